"""An unknown path or method under a dialect's prefix is answered in that dialect's error envelope."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import CRM_TOKEN, Gateway

BEARER = {"Authorization": f"Bearer {CRM_TOKEN}"}


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/rest/v1.0/1/dialler/nope", 404, {"status": 404, "error": "Not found"}),
        ("PUT", "/rest/v1.0/1/dialler/campaigns", 405, {"status": 405, "error": "Method not allowed"}),
        ("GET", "/api/v2/me/nope", 404, {"statusCode": 6, "statusMessage": "Not found"}),
        ("DELETE", "/api/v2/me", 405, {"statusCode": 2, "statusMessage": "Method not allowed"}),
        (
            "GET",
            "/api/v1/SNtialWait/nope",
            404,
            {"statusText": "NotFound", "statusCode": 404, "item": None, "message": "Not found"},
        ),
        (
            "PATCH",
            "/api/v1/SNtialWait/contact",
            405,
            {"statusText": "MethodNotAllowed", "statusCode": 405, "item": None, "message": "Method not allowed"},
        ),
    ],
)
async def test_dialect_envelope_for_unknown_routes(
    gw: Gateway, method: str, path: str, status: int, body: dict[str, Any]
) -> None:
    """404/405 in the dialect's JSON, with Allow on 405, instead of aiohttp's plain text."""
    async with aiohttp.ClientSession() as http, http.request(method, gw.base + path, headers=BEARER) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        assert await resp.json() == body
        if status == 405:
            assert resp.headers["Allow"]


async def test_other_unknown_paths_keep_aiohttps_answer(gw: Gateway) -> None:
    """Outside the dialects' prefixes nothing changes: aiohttp's own 404."""
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/nothing-here") as resp:
        assert resp.status == 404
        assert resp.content_type == "text/plain"
