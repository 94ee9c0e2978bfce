"""The OpenAPI document: served at /api/openapi.json, valid OpenAPI 3.1, and exactly the app's REST routes."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import schemathesis

from gateway.api.openapi import DOCUMENT_PATH, build_document
from gateway.api.spec_gws import CAMPAIGN_OPERATIONS, RECORD_OPERATIONS, RECORDS_OPERATIONS
from gateway.app import SETTINGS
from tests.conftest import AGENT_PASSWORD, Gateway
from tests.integration.gws_client import DEVICE1, Agent

# Routes that are not one of the REST dialects; every other route of the app must be in the document.
NOT_REST = frozenset({"/healthz", "/readyz", "/metrics", DOCUMENT_PATH})
# The agent desktop page (issue 6, desktop branch) serves its files and a small JSON helper API of its own.
NOT_REST_PREFIXES = ("/desktop",)


def app_routes(gw: Gateway) -> set[tuple[str, str]]:
    """(method, path template) of every REST route the app serves (HEAD, aiohttp's twin of GET, left out)."""
    assert gw.app is not None
    bayeux = gw.app[SETTINGS].bayeux.path
    routes = set()
    for route in gw.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path in NOT_REST or path.startswith((bayeux, *NOT_REST_PREFIXES)) or route.method == "HEAD":
            continue
        routes.add((route.method, path))
    return routes


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(method, path template) of every operation in the document."""
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def test_served_without_credentials(gw: Gateway) -> None:
    """GET /api/openapi.json needs no credentials and answers the document built from the operation tables."""
    async with aiohttp.ClientSession() as http, http.get(gw.base + DOCUMENT_PATH) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        served = await resp.json()
    assert served == build_document()
    assert served["openapi"] == "3.1.0"


def test_valid_openapi() -> None:
    """schemathesis' OpenAPI 3.1 validator accepts the document; every schema is valid JSON Schema 2020-12."""
    document = build_document()
    schemathesis.openapi.from_dict(document).validate()
    for schema in document["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)
    operations = [op for item in document["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        for target in op["responses"]["200"].get("links", {}).values():
            assert target["operationId"] in ids
    text = repr(document)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name


async def test_operations_are_the_routes(gw: Gateway) -> None:
    """Both directions: every REST route is documented, and every documented operation is routed."""
    document = build_document()
    routes = app_routes(gw)
    assert routes == documented(document)
    assert gw.app is not None
    heads = {r.resource.canonical for r in gw.app.router.routes() if r.method == "HEAD" and r.resource is not None}
    rest_heads = {path for path in heads if not path.startswith(NOT_REST_PREFIXES)}
    assert rest_heads <= {path for method, path in routes if method == "GET"} | NOT_REST


ALL_GWS_NAMES = sorted({*RECORD_OPERATIONS, *RECORDS_OPERATIONS, *CAMPAIGN_OPERATIONS})


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/outbound-records/1", RECORD_OPERATIONS),
        ("/outbound-records", RECORDS_OPERATIONS),
        ("/outbound-campaigns/Retention", CAMPAIGN_OPERATIONS),
    ],
)
async def test_gws_operation_names_are_the_dispatched_ones(gw: Gateway, path: str, names: dict[str, Any]) -> None:
    """The operationNames the document lists for a URL are exactly those gws.py dispatches there."""
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        for name in ALL_GWS_NAMES:
            reply = await agent.post(path, {"operationName": name})
            unknown = "Unknown operationName" in reply.body.get("statusMessage", "")
            assert unknown == (name not in names), (name, reply.body)
