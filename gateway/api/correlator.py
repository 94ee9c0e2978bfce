"""Correlated operations: run once per referenceId; a retry is answered from the registry, never applied twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from gateway.api.common import Reply
from gateway.api.errors import ErrorTable
from gateway.api.failures import ReferenceConflict
from gateway.events.correlation import CorrelationRegistry, Started
from gateway.events.types import EventSink, OperationAck
from gateway.services.errors import DomainError

# How long a retry waits for the first attempt still running before it is refused (409).
WAIT_S: Final = 30.0

Apply = Callable[[], Awaitable[Reply]]
Resend = Callable[[Any], Awaitable[None]]


class Correlator:
    """Applies operations under their referenceId and acknowledges them on the caller's /v2/me/operations."""

    def __init__(self, *, registry: CorrelationRegistry, events: EventSink, wait_s: float = WAIT_S) -> None:
        self.registry = registry
        self._events = events
        self._wait_s = wait_s

    async def run(
        self,
        *,
        user: str,
        reference: str | None,
        operation: str,
        fingerprint: str,
        apply: Apply,
        errors: ErrorTable,
        on_retry: Resend | None = None,
        acknowledge: bool = True,
    ) -> Reply:
        """Apply once; a refused operation (a domain error) is an outcome too, remembered like a success.

        A retry gets the first answer, and `on_retry` gets what the first attempt kept (`Reply.kept`), so a
        dialect whose notifications are its acknowledgement sends them again; `acknowledge=False` then.
        """

        async def guarded() -> Reply:
            try:
                return await apply()
            except DomainError as exc:
                return errors.answer(exc)

        if reference is None:
            return await guarded()
        while True:
            started, entry = await self.registry.begin(user, reference, operation, fingerprint)
            if started is Started.CONFLICT:
                raise ReferenceConflict(f"referenceId {reference} was already used for a different request")
            if started is Started.NEW:
                break
            done = await self.registry.wait(entry, self._wait_s)
            if done is not None and done.status is not None:
                if on_retry is not None:
                    await on_retry(done.notification)
                return Reply(done.status, done.result)
            if await self.registry.get(user, reference) is not None:
                raise ReferenceConflict(f"the operation with referenceId {reference} is still in progress")
            # The first attempt failed unexpectedly and was forgotten: run it now.
        try:
            reply = await guarded()
        except BaseException:
            await self.registry.abandon(entry)
            raise
        await self.registry.complete(entry, reply.status, reply.body, notification=reply.kept)
        if acknowledge:
            ack = OperationAck(user, reference, operation, reply.status, reply.body)
            await self._events.emit(self._events.operation_done(ack))
        return reply
