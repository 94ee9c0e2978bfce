"""Operation tables of the REST dialects: the data both the router and the OpenAPI document are built from.

Each dialect's spec module (spec_jtel, spec_gws, spec_sntial) lists its operations once; the dialect's
`routes()` binds those same operations to handlers (`bind`), and `openapi.build_document` describes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

Schema = dict[str, Any]
H = TypeVar("H")

_REF: Final = "#/components/schemas/{model}"
PATH_PARAM: Final = re.compile(r"\{([^}/]+)\}")


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": _REF.format(model=name)}


def nullable(schema: Schema) -> Schema:
    """`schema` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: Mapping[str, Schema], *, required: Iterable[str] | None = None, closed: bool = True) -> Schema:
    """An object schema; every property is required unless `required` says otherwise."""
    out: Schema = {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties if required is None else required),
    }
    if closed:
        out["additionalProperties"] = False
    return out


def query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


def header(name: str, schema: Schema, description: str) -> Schema:
    """An optional request header."""
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


def model_schemas(models: Sequence[type[BaseModel]], *, mode: JsonSchemaMode = "validation") -> dict[str, Schema]:
    """Component schemas of pydantic models (by their class names, refs into components)."""
    if not models:
        return {}
    pairs = [(m, mode) for m in models]
    _, top = models_json_schema(pairs, ref_template=_REF, by_alias=True)
    return dict(top.get("$defs", {}))


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path: what the router serves and the document describes."""

    method: str
    path: str  # aiohttp's template syntax, which is OpenAPI's: /contacts/{contact_id}
    operation_id: str
    summary: str
    ok: Schema  # the 200 body
    errors: tuple[int, ...]  # error statuses this operation can answer, in the dialect's envelope
    handler: str = ""  # the handler's key in routes(); defaults to operation_id
    params: tuple[Schema, ...] = ()  # query and header parameters (path parameters come from the dialect)
    body: Schema | None = None
    example: Any = None  # of the body
    links: Mapping[str, Schema] = field(default_factory=dict)  # OpenAPI links from the 200 answer

    @property
    def handler_key(self) -> str:
        """The key `bind` looks the handler up by."""
        return self.handler or self.operation_id


@dataclass(frozen=True, slots=True)
class Dialect:
    """A REST dialect: its operations, how callers authenticate, its error envelope and its schemas."""

    tag: str
    prefix: str  # where the dialect is mounted: every operation's path starts with it
    description: str
    security: tuple[Mapping[str, list[str]], ...]
    error: Schema  # the error envelope
    path_params: Mapping[str, Schema]  # name -> parameter object without name/in/required
    operations: tuple[Operation, ...]
    schemas: Mapping[str, Schema] = field(default_factory=dict)


def link(operation_id: str, **parameters: str) -> Schema:
    """An OpenAPI link: which operation can use this answer, and how its parameters are filled."""
    return {"operationId": operation_id, "parameters": parameters}


def bind(operations: Iterable[Operation], handlers: Mapping[str, H]) -> list[tuple[Operation, H]]:
    """Pair each operation with its handler; every operation needs one and every handler is used."""
    ops = list(operations)
    missing = sorted({op.handler_key for op in ops} - set(handlers))
    unused = sorted(set(handlers) - {op.handler_key for op in ops})
    if missing or unused:
        raise ValueError(f"operations without handler: {missing}; handlers without operation: {unused}")
    return [(op, handlers[op.handler_key]) for op in ops]
