"""The OpenAPI 3.1 document of the three REST dialects, built from their operation tables (gateway.api.spec)."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Final

import gateway
from gateway.api.spec import PATH_PARAM, Dialect, Operation, Schema
from gateway.api.spec_gws import GWS
from gateway.api.spec_jtel import JTEL
from gateway.api.spec_sntial import SNTIAL
from gateway.api.spec_supervisor import SUPERVISOR

OPENAPI_VERSION: Final = "3.1.0"
DOCUMENT_PATH: Final = "/api/openapi.json"
DIALECTS: Final = (JTEL, GWS, SNTIAL, SUPERVISOR)

SECURITY_SCHEMES: Final[dict[str, Schema]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A service's or supervisor's token (users[].token); jtel also checks the ClientsID.",
    },
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "An agent's (GWS) or a supervisor's name and password (users[].password).",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "JSESSIONID",
        "description": "The session cookie a successful Basic request sets (gws.session_cookie).",
    },
}


def build_document(dialects: Iterable[Dialect] = DIALECTS) -> Schema:
    """The OpenAPI document of `dialects` (by default the three the gateway serves)."""
    paths: dict[str, Schema] = {}
    schemas: dict[str, Schema] = {}
    tags = []
    for dialect in dialects:
        tags.append({"name": dialect.tag, "description": dialect.description})
        schemas.update(dialect.schemas)
        for op in dialect.operations:
            item = paths.setdefault(op.path, {})
            method = op.method.lower()
            if method in item:
                raise ValueError(f"{op.method} {op.path} is described twice")
            item[method] = _operation(dialect, op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Contact-center gateway REST API",
            "version": gateway.__version__,
            "description": "The jtel dialler contacts API, the Genesys Web Services outbound API, the SNtial "
            "Wait waiting field and the supervisor's views. Notifications travel over Bayeux/CometD, which this "
            "document does not describe.",
        },
        "tags": tags,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _operation(dialect: Dialect, op: Operation) -> Schema:
    params = [
        {"name": name, "in": "path", "required": True, **dialect.path_params[name]}
        for name in PATH_PARAM.findall(op.path)
    ]
    responses: Schema = {"200": _response(200, op.ok)}
    if op.links:
        responses["200"]["links"] = dict(op.links)
    for status in op.errors:
        responses[str(status)] = _response(status, dialect.error)
    out: Schema = {
        "tags": [dialect.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [dict(s) for s in dialect.security],
        "parameters": params + list(op.params),
        "responses": responses,
    }
    if op.body is not None:
        media: Schema = {"schema": op.body}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": media}}
    return out


def _response(status: int, schema: Schema) -> Schema:
    return {"description": HTTPStatus(status).phrase, "content": {"application/json": {"schema": schema}}}
