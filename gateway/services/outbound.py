"""Outbound records for agents (the GWS dialect's domain): preview sessions, reservations and the record
operations. Records are the stored dialler contacts; a record handle is a contact ID."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gateway.clock import utcnow
from gateway.events.types import EventSink, RecordCancelled, RecordNotice
from gateway.services.call_results import CALL_RESULTS, DEFAULT_RESULT_CODE, RESULT_CODE_OF, parse_call_result
from gateway.services.campaigns import Campaigns
from gateway.services.contact_fields import CLIENT_FIELDS, check_field
from gateway.services.errors import Forbidden, InvalidInput, InvalidState, NotFound
from gateway.services.outbox import Payloads, Rendered, constant, payloads
from gateway.services.records import RecordObserver, Request, campaign_ref, phone_number
from gateway.settings import CampaignSettings
from gateway.store.base import ContactRow, ContactStore, HoldLimitReached, RecordChange
from gateway.store.preview import PreviewSessions
from gateway.wire.notification import Notification

RESCHEDULED = 5  # result code "Call Back (Delay)"
DO_NOT_CALL = 4  # result code "Do Not Call (Abort)"


class OutboundService:
    """Preview sessions and record operations; notifications go to the requesting agent only."""

    def __init__(
        self,
        *,
        store: ContactStore,
        campaigns: Campaigns,
        events: EventSink,
        previews: PreviewSessions,
        max_records_per_agent: int = 0,
        clock: Callable[[], datetime] = utcnow,
        skills_of: Callable[[str], tuple[str, ...]] = lambda agent: (),
        present: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._store = store
        self._campaigns = campaigns
        self._events = events
        self._max_records = max_records_per_agent
        self._clock = clock
        # Started preview sessions: in memory on one node, in the store when several nodes share it.
        self._sessions = previews
        self._observers: list[RecordObserver] = []
        self._skills_of = skills_of
        self._present = present or _anyone

    def observe(self, observer: RecordObserver) -> None:
        """Tell `observer` what happens to records from now on."""
        self._observers.append(observer)

    async def preview_campaigns(self, agent: str) -> frozenset[int]:
        """IDs of the campaigns in which the agent started a preview session."""
        return await self._sessions.campaigns_of(agent)

    # -- preview sessions ------------------------------------------------------------------------------

    async def start_preview(self, req: Request) -> Payloads:
        """StartPreviewSession: the agent works this campaign."""
        campaign = self._campaign(req)
        await self._sessions.start(req.agent, campaign.id, self._clock())
        return await self._tell(req, "PreviewSessionStarted", campaign, campaign_message=True, state="Started")

    async def end_preview(self, req: Request) -> Payloads:
        """EndPreviewSession: releases every record the agent holds in the campaign."""
        campaign = self._campaign(req)
        await self._sessions.end(req.agent, campaign.id)
        for row in await self._store.reserved_by(req.agent, campaign.id):
            await self._store.change(row.id, agent=req.agent, change=RecordChange(), now=self._clock())
        return await self._tell(req, "PreviewSessionEnded", campaign, campaign_message=True, state="Stopped")

    async def get_preview(self, req: Request) -> Payloads:
        """GetPreviewRecord: reserve the next callable record for the agent and push it (or say there is none)."""
        campaign = self._campaign(req)
        if not await self._sessions.started(req.agent, campaign.id):
            raise InvalidState(f"No preview session started for campaign {campaign.name}")
        sent = Rendered[ContactRow | None](
            lambda row: self._render(req, "PreviewRecord" if row else "PreviewRecordEmpty", campaign, row)
        )
        try:
            # The limit is counted in the reservation's transaction: two nodes cannot both pass it.
            row = await self._store.reserve_next(
                campaign_id=campaign.id, agent=req.agent, now=self._clock(), notify=sent, max_held=self._max_records
            )
        except HoldLimitReached:
            raise InvalidState(
                f"The agent already holds {self._max_records} records (outbound.max_records_per_agent)"
            ) from None
        if row is not None:
            await self._observe_reserved(row, req.agent)
        return sent.payloads()

    # -- record operations -----------------------------------------------------------------------------

    async def complete(self, req: Request, handle: int, call_result: object, phone: str | None) -> Payloads:
        """CompleteRecord: record the call result in the history and result code; the record is done."""
        # Input first: a bad callResult is a bad request whatever the record's state.
        code = parse_call_result(call_result) if call_result is not None else None
        campaign, row = await self._held(req, handle)
        offset = self._phone_offset(row, phone)
        result_code = RESULT_CODE_OF.get(code, DEFAULT_RESULT_CODE) if code is not None else DEFAULT_RESULT_CODE
        phones = row.phones()
        change = RecordChange(
            finished=True,
            result_code_id=result_code,
            attempts=1,
            history={
                "result_code_id": result_code,
                "phone_number": phone or (phones[0][1] if phones else None),
                "phone_offset": offset,
                "user_name": req.agent,
                "CallResult": CALL_RESULTS.get(code) if code is not None else None,
                "CallResultCode": code,
            },
        )
        updated, payloads = await self._apply(req, row, change, "RecordProcessedAcknowledge", campaign)
        for observer in self._observers:
            await observer.record_completed(updated, req.agent)
        return payloads

    async def reject(self, req: Request, handle: int) -> Payloads:
        """RejectRecord: the record goes back to the pool untouched."""
        campaign, row = await self._held(req, handle)
        return (await self._apply(req, row, RecordChange(), "RecordRejectAcknowledge", campaign))[1]

    async def do_not_call(self, req: Request, handle: int, phone: str | None, chain: str | None) -> Payloads:
        """DoNotCallRecord: never offered again (with chainAttribute AllChain, its whole chain)."""
        campaign, row = await self._held(req, handle)
        change = RecordChange(do_not_call=True, finished=True, result_code_id=DO_NOT_CALL)
        members = await self._store.chain(row) if chain == "AllChain" else []
        _, payloads = await self._apply(req, row, change, "DoNotCallAcknowledge", campaign)
        for member in members:
            before = member.reserved_by
            cancel = self._cancel_for(before, member, req.agent)
            await self._store.change(member.id, agent=None, change=change, now=self._clock(), notify=constant(cancel))
        return payloads

    async def do_not_call_number(self, req: Request, phone: str) -> Payloads:
        """DoNotCallRecord by phoneNumber: every record with that number is never offered again."""
        campaign = self._campaign(req, check_list=False)
        if not phone.strip():
            raise InvalidInput("phoneNumber must not be empty")

        def notify(rows: list[ContactRow]) -> list[Notification]:
            notes = self._render(req, "DoNotCallAcknowledge", campaign, None, echo={"phoneNumber": phone})
            for row in rows:
                notes += self._cancel_for(row.reserved_by, row, req.agent)
            return notes

        sent = Rendered(notify)
        await self._store.do_not_call_number(phone, self._clock(), notify=sent)
        return payloads([n for n in sent.sent if n.user == req.agent])

    async def reschedule(self, req: Request, handle: int, callback_type: str, timestamp: int) -> Payloads:
        """RescheduleRecord: next try at `timestamp` (epoch seconds); Personal keeps it for this agent."""
        campaign, row = await self._held(req, handle)
        try:
            when = datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput("timestamp must be seconds since 1970-01-01 (UTC)") from None
        personal = callback_type == "Personal"
        change = RecordChange(
            next_try_at=when,
            personal_agent=req.agent if personal else None,
            clear_personal=not personal,
            result_code_id=RESCHEDULED,
            attempts=1,
            history={
                "result_code_id": RESCHEDULED,
                "user_name": req.agent,
                "CallbackType": callback_type,
                "NextTry": when.isoformat(),
            },
        )
        updated, payloads = await self._apply(req, row, change, "ScheduledRecordRescheduleAcknowledge", campaign)
        if personal:
            for observer in self._observers:
                observer.callback_scheduled(updated)
        return payloads

    async def update(self, req: Request, handle: int, fields: dict[str, Any]) -> Payloads:
        """UpdateRecord: change the record's phone number and dialling fields; the agent keeps it."""
        campaign, row = await self._held(req, handle)
        data: dict[str, Any] = {}
        gws = dict(row.data.get("_gws") or {})
        for key, value in fields.items():
            if value is None:
                continue
            if key == "phoneNumber":
                data["PhoneNumber1"] = phone_number(value)
            else:
                gws[key] = value
        if gws:
            data["_gws"] = gws
        change = RecordChange(release=False, data=data)
        return (await self._apply(req, row, change, "UpdateCallCompletionStatsAcknowledge", campaign))[1]

    async def add(
        self, req: Request, phone: str, chain_id: int | None, fields: dict[str, Any], other: dict[str, Any]
    ) -> Payloads:
        """AddRecord: a new record in the campaign (in chain `chain_id`, or a chain of its own)."""
        campaign = self._campaign(req)
        if not phone.strip():
            raise InvalidInput("phoneNumber must not be empty")
        if chain_id is not None:
            members = [r for r in await self._store.get_many([chain_id], [], None) if r.campaign_id == campaign.id]
            if not members:
                raise NotFound(f"Chain {chain_id} not found in campaign {campaign.name}")
        # otherFields travel as they are; jtel-named ones become the contact's fields, with jtel's types and lengths.
        data: dict[str, Any] = {
            "PhoneNumber1": phone_number(phone),
            **{k: v for k, v in other.items() if isinstance(k, str)},
        }
        for name in CLIENT_FIELDS:
            check_field(name, data.get(name))
        data["_gws"] = {k: v for k, v in fields.items() if v is not None}
        sent = Rendered[ContactRow](lambda row: self._render(req, "AddRecordAcknowledge", campaign, row))
        await self._store.add(campaign_id=campaign.id, data=data, chain_id=chain_id, now=self._clock(), notify=sent)
        return sent.payloads()

    async def chained(self, req: Request, handle: int) -> Payloads:
        """GetChainedRecord: one ChainedRecord per other phone number and chain member, then DataEnd."""
        campaign, row = await self._held(req, handle)
        notes: list[Notification] = []
        chain_id = row.chain_id if row.chain_id is not None else row.id
        for position, phone in row.phones()[1:]:
            extra = {"GSW_PHONE": phone, "GSW_PHONE_OFFSET": position, "GSW_CHAIN_ID": chain_id}
            notes += self._render(req, "ChainedRecord", campaign, row, extra=extra)
        for member in await self._store.chain(row):
            phones = member.phones()
            extra = {"GSW_PHONE": phones[0][1] if phones else None, "GSW_CHAIN_ID": chain_id}
            notes += self._render(req, "ChainedRecord", campaign, member, extra=extra)
        notes += self._render(req, "ChainedRecordsDataEnd", campaign, row, extra={"GSW_CHAIN_ID": chain_id})
        await self._events.emit(notes)
        return payloads(notes)

    # -- pushed to agents ------------------------------------------------------------------------------

    async def offer_scheduled(self, contact_id: int, agent: str) -> bool:
        """A personal callback is due: reserve it for its agent and push it as ScheduledCall."""
        row = await self._store.reserve(
            contact_id, agent=agent, now=self._clock(), notify=lambda row: self._pushed(agent, "ScheduledCall", row)
        )
        if row is None:
            return False
        await self._observe_reserved(row, agent)
        return True

    async def offer(self, contact_id: int, campaign_id: int, skills: tuple[str, ...]) -> str | None:
        """Push a record to an agent waiting in the campaign (preview session started, connected, holding
        nothing) whose skills include `skills`; return that agent, or None (the record stays in the pool)."""
        candidates = [
            agent for agent in await self._sessions.agents_in(campaign_id) if set(skills) <= set(self._skills_of(agent))
        ]
        for agent in candidates:
            if not await self._present(agent) or await self._store.reserved_by(agent):
                continue
            try:
                # "Holding nothing" is re-checked in the reservation's transaction (max_held=1): an agent
                # offered two records by two nodes at once gets one.
                row = await self._store.reserve(
                    contact_id,
                    agent=agent,
                    now=self._clock(),
                    notify=partial(self._pushed, agent, "PreviewRecord"),
                    max_held=1,
                )
            except HoldLimitReached:
                continue
            if row is None:
                return None  # taken meanwhile (or withdrawn)
            await self._observe_reserved(row, agent)
            return agent
        return None

    async def withdraw(self, contact_id: int) -> None:
        """Take a record out of the dialler for good (finished); its holder gets RecordCancel."""
        row = await self._store.get(contact_id, None)
        if row is None:
            return
        holder = row.reserved_by
        cancel = self._events.record_cancelled(RecordCancelled(holder, row.id, row.campaign_id)) if holder else []
        change = RecordChange(finished=True)
        await self._store.change(contact_id, agent=None, change=change, now=self._clock(), notify=constant(cancel))

    async def _observe_reserved(self, row: ContactRow, agent: str) -> None:
        for observer in self._observers:
            await observer.record_reserved(row, agent)

    # -- helpers ---------------------------------------------------------------------------------------

    def _campaign(self, req: Request, *, check_list: bool = True) -> CampaignSettings:
        try:
            campaign = self._campaigns.by_name(req.campaign_name)
        except NotFound:
            raise NotFound(f"Campaign {req.campaign_name} not found") from None
        if req.application_id != campaign.application_id:
            raise InvalidInput(f"applicationId {req.application_id} does not match campaign {campaign.name}")
        if check_list and req.calling_list is not None and req.calling_list != campaign.calling_list:
            raise InvalidInput(f"callingList {req.calling_list} does not match campaign {campaign.name}")
        return campaign

    async def _held(self, req: Request, handle: int) -> tuple[CampaignSettings, ContactRow]:
        campaign = self._campaign(req)
        row = await self._store.get(handle, None)
        if row is None:
            raise NotFound(f"Record {handle} not found")
        if row.campaign_id != campaign.id:
            raise InvalidInput(f"Record {handle} does not belong to campaign {campaign.name}")
        if row.reserved_by is None:
            reason = "locked" if row.locked else "not reserved by this agent"
            raise InvalidState(f"Record {handle} is {reason}")
        if row.reserved_by != req.agent:
            raise Forbidden(f"Record {handle} is reserved by another agent")
        return campaign, row

    async def _apply(
        self, req: Request, row: ContactRow, change: RecordChange, kind: str, campaign: CampaignSettings
    ) -> tuple[ContactRow, Payloads]:
        """Change a held record; its acknowledgement `kind` is logged in the same transaction."""
        sent = Rendered[ContactRow | None](
            lambda updated: self._render(req, kind, campaign, updated) if updated else []
        )
        updated = await self._store.change(row.id, agent=req.agent, change=change, now=self._clock(), notify=sent)
        if updated is None:
            # Taken away between the check and the change (a lock or delete won the race).
            raise InvalidState(f"Record {row.id} is no longer reserved by this agent")
        return updated, sent.payloads()

    def _cancel_for(self, holder: str | None, row: ContactRow, requester: str) -> list[Notification]:
        if holder is None or holder == requester:
            return []
        return self._events.record_cancelled(RecordCancelled(holder, row.id, row.campaign_id))

    def _pushed(self, agent: str, kind: str, row: ContactRow | None) -> list[Notification]:
        """A record pushed to an agent that did not ask (ScheduledCall, PreviewRecord); nothing if not reserved."""
        if row is None:
            return []
        campaign = campaign_ref(self._campaigns.get(row.campaign_id))
        return self._events.record_notice(RecordNotice(agent=agent, kind=kind, campaign=campaign, record=row))

    @staticmethod
    def _phone_offset(row: ContactRow, phone: str | None) -> int | None:
        for position, number in row.phones():
            if phone is None or number == phone:
                return position
        return None

    async def _tell(
        self, req: Request, kind: str, campaign: CampaignSettings, *, campaign_message: bool, state: str
    ) -> Payloads:
        """A notification that reports no change of a record (a preview session): logged on its own."""
        notes = self._render(req, kind, campaign, campaign_message=campaign_message, state=state)
        await self._events.emit(notes)
        return payloads(notes)

    def _render(
        self,
        req: Request,
        kind: str,
        campaign: CampaignSettings,
        row: ContactRow | None = None,
        *,
        campaign_message: bool = False,
        state: str | None = None,
        extra: dict[str, Any] | None = None,
        echo: dict[str, Any] | None = None,
    ) -> list[Notification]:
        notice = RecordNotice(
            agent=req.agent,
            kind=kind,
            campaign=campaign_ref(campaign),
            reference_id=req.reference_id,
            record=row,
            echo={**req.echo, **(echo or {})},
            extra=extra or {},
            campaign_message=campaign_message,
            campaign_state=state,
        )
        return self._events.record_notice(notice)


async def _anyone(agent: str) -> bool:
    """Without a presence check every agent counts as connected."""
    return True
