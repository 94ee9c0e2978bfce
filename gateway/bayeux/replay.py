"""Salesforce's replay extension on the server: opt-in at the handshake, replay at the subscribe.

Wire shape (Streaming API "Message Durability"): a handshake with `ext.replay: true` is answered with
`ext.replay: true`; `/meta/subscribe` may carry `ext.replay: {"<subscription>": <replayId> | -1 | -2}`:
everything after that id, only new events, or everything retained. Events delivered to a session that
opted in carry `data.event.replayId`; events delivered from the log (not live) also carry
`ext.replayed: true`. An id no longer retained fails the subscribe with Salesforce's 400 text. Our
addition: the subscribe reply's `ext.replay` names, per replayable subscription, the id the client may
resume from once it has what the subscribe queued for it (the requested id when events are replayed; else
the log's last id), so a client that asked for -1 and got nothing still knows where to resume from.

The seam between the replay and live delivery: the session's log is gated (live events held back)
before the subscription is registered and the log read; after the read, the replay is queued, then the
held-back events it did not contain. A live event is delivered only after its transaction committed,
so every event is either in the read or delivered live after the gate opened (or both: then once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from gateway.hub.replay_state import ReplayState
from gateway.wire.channel import matches
from gateway.wire.replay import (
    ALL_RETAINED,
    NEW_ONLY,
    created_date,
    invalid_replay_id,
    replayed,
    with_replay_id,
)

if TYPE_CHECKING:
    from gateway.bayeux.logs import LogPolicy
    from gateway.hub.hub import Hub
    from gateway.hub.session import Session
    from gateway.store.log import NotificationLog
    from gateway.wire.message import Message
    from gateway.wire.notification import Notification

KEY: Final = "replay"
_CHUNK: Final = 5000


def requested(message: Message) -> dict[str, object] | None:
    """The subscribe's `ext.replay` map, if it has one."""
    ext = message.get("ext")
    value = ext.get(KEY) if isinstance(ext, dict) else None
    return value if isinstance(value, dict) else None


def replay_message(note: Notification) -> Message:
    """A logged notification as a replayed event: with its replayId, marked as replayed."""
    assert note.replay_id is not None
    created = created_date(note.created) if note.created is not None else None
    return replayed(with_replay_id(note.message(), note.replay_id, created))


class Replayer:
    """Checks replay requests and replays logs into sessions."""

    def __init__(self, *, log: NotificationLog | None, logs: LogPolicy, hub: Hub) -> None:
        self._log = log
        self._logs = logs
        self._hub = hub

    @property
    def enabled(self) -> bool:
        """True when there is a log to replay from."""
        return self._log is not None and self._logs.enabled

    def opt_in(self, handshake: Message, reply: Message, session: Session) -> None:
        """A successful handshake with `ext.replay: true`: the session replays, and the reply says so."""
        ext = handshake.get("ext")
        if self.enabled and isinstance(ext, dict) and ext.get(KEY) is True:
            session.replay = ReplayState()
            reply.setdefault("ext", {})[KEY] = True

    async def subscribe(self, session: Session, pattern: str, value: object) -> tuple[str | None, int | None]:
        """Subscribe `session` to `pattern` replaying from `value`.

        Returns the Bayeux error if refused, else the id the client has now seen up to (its baseline:
        everything after it reaches the session live); None when the subscription is not replayable.
        """
        if isinstance(value, bool) or not isinstance(value, int) or value < ALL_RETAINED:
            return invalid_replay_id(value), None
        log = self._logs.log_for(pattern, session.user)
        if self._log is None or log is None or session.replay is None:
            self._hub.subscribe(session, pattern)  # not replayable: a plain subscription
            return None, None
        if value == NEW_ONLY:
            self._hub.subscribe(session, pattern)
            # Read after subscribing: what commits later arrives live, so nothing after this id is missed.
            return None, (await self._log.bounds(log)).last_id
        async with session.replay.lock:
            bounds = await self._log.bounds(log)
            if value >= 0 and not bounds.valid(value):
                return invalid_replay_id(value), None
            after = bounds.pruned_through if value == ALL_RETAINED else value
            session.open_gate(log)
            self._hub.subscribe(session, pattern)
            try:
                entries = await self._read(log, after)
                if value >= 0 and not (await self._log.bounds(log)).valid(value):
                    # Pruned while we read (the prune runs rarely): what we read may have a hole.
                    self._hub.unsubscribe(session, pattern)
                    session.close_gate(log, [], after=after)
                    return invalid_replay_id(value), None
            except BaseException:
                session.close_gate(log, [], after=after)
                raise
            mine = [(n.replay_id or 0, replay_message(n)) for n in entries if matches(pattern, n.channel)]
            session.close_gate(log, mine, after=after)
            # Every event of the pattern up to the last id read is the client's now (it had those up to
            # `after`; the read had the rest, ids being given in commit order): a live copy arriving late
            # (another node's envelope on its way, a gap fill) is not delivered again.
            session.replay.cover(log, pattern, max(after, entries[-1].replay_id or after) if entries else after)
        if mine:
            # The replayed events advance the client's id as they arrive: a baseline past them would make a
            # client whose session dies before they are delivered resume after events it never got.
            return None, after
        return None, max(after, entries[-1].replay_id or after) if entries else after

    async def _read(self, log: str, after: int) -> list[Notification]:
        assert self._log is not None
        out: list[Notification] = []
        while True:
            chunk = await self._log.read(log, after, _CHUNK)
            out.extend(chunk)
            if len(chunk) < _CHUNK:
                return out
            after = chunk[-1].replay_id or after
