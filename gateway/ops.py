"""Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.api.openapi import DOCUMENT_PATH, build_document
from gateway.metrics import CONTENT_TYPE, Metrics

Probe = Callable[[], Awaitable[bool]]


class OpsRoutes:
    """/healthz, /readyz, /metrics and /api/openapi.json."""

    def __init__(self, *, probes: dict[str, Probe], metrics: Metrics) -> None:
        self._probes = probes
        self._metrics = metrics
        # The document of the REST routes: built from the same operation tables, once.
        self._openapi = orjson.dumps(build_document())

    def routes(self) -> list[web.RouteDef]:
        """The routes, for the top-level application."""
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
            web.get(DOCUMENT_PATH, self.openapi),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the process runs and its event loop answers."""
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when every engine the node depends on answers, 503 otherwise; each one named."""
        # Concurrently: a Redis that does not answer costs the response one probe's timeout, not one per probe.
        answers = await asyncio.gather(*(probe() for probe in self._probes.values()))
        results = dict(zip(self._probes, answers, strict=True))
        ready = all(results.values())
        body = {"status": "ready" if ready else "not ready", **results}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text exposition."""
        return web.Response(body=await self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document of the REST dialects."""
        return web.Response(body=self._openapi, content_type="application/json")
