"""The jtel dialler contacts REST dialect, under /rest/v1.0/{ClientsID}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from gateway.api import jtel_views as views
from gateway.api.common import Reply, fingerprint, read_json, reference_id
from gateway.api.correlator import Correlator
from gateway.api.edge import Call, Handler
from gateway.api.errors import JTEL
from gateway.api.failures import BadRequest, MissingParameter, Unauthenticated
from gateway.identity import Directory
from gateway.services.campaigns import Campaigns
from gateway.services.contacts import ContactService

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


class JtelApi:
    """The jtel dialect: its edge (Bearer token whose clients include the ClientsID) and its handlers."""

    errors = JTEL

    def __init__(
        self,
        *,
        directory: Directory,
        contacts: ContactService,
        campaigns: Campaigns,
        correlator: Correlator,
        max_batch: int,
    ) -> None:
        self._directory = directory
        self._contacts = contacts
        self._campaigns = campaigns
        self._correlator = correlator
        self._max_batch = max_batch

    def handlers(self) -> dict[str, Handler]:
        """Handlers by the operation table's keys (spec_jtel)."""
        return {
            "list_campaigns": self.list_campaigns,
            "get_campaign": self.get_campaign,
            "list_contacts": self.list_contacts,
            "batch_retrieve": self.batch_retrieve,
            "batch_delete": self.batch_delete,
            "import_contact": self.import_contact,
            "get_by_user_data": self.get_by_user_data,
            "delete_by_user_data": self.delete_by_user_data,
            "get_contact": self.get_contact,
            "delete_contact": self.delete_contact,
            "lock_by_user_data": self.lock_by_user_data,
            "unlock_by_user_data": self.unlock_by_user_data,
            "lock_contact": self.lock_contact,
            "unlock_contact": self.unlock_contact,
        }

    # -- the edge --------------------------------------------------------------------------------------

    async def authenticate(self, request: web.Request) -> Call:
        """A service's or supervisor's bearer token whose clients include the path's ClientsID."""
        try:
            client_id = int(request.match_info["client_id"])
        except ValueError:
            raise BadRequest("ClientsID must be an integer") from None
        identity = self._directory.service_from_bearer(request.headers.get("Authorization"))
        if identity is None or client_id not in identity.clients:
            raise Unauthenticated
        return Call(request, identity, client_id=client_id)

    def finish(self, request: web.Request, call: Call | None, reply: Reply, response: web.StreamResponse) -> None:
        """Nothing to add: jtel answers carry no cookies or extra headers."""

    async def _correlated(
        self, call: Call, operation: str, body: bytes, apply: Callable[[], Awaitable[Reply]]
    ) -> Reply:
        reference = reference_id(call.request)
        return await self._correlator.run(
            user=call.identity.name,
            reference=reference,
            operation=operation,
            # Only retries under a referenceId are compared with it: a request without one needs no digest.
            fingerprint=fingerprint(call.request, body) if reference is not None else "",
            apply=apply,
            errors=JTEL,
        )

    # -- campaigns ------------------------------------------------------------------------------------

    async def list_campaigns(self, call: Call) -> Reply:
        """GET {base}/dialler/campaigns"""
        return Reply(
            200, views.listing([views.campaign(c, _client(call)) for c in self._campaigns.visible(_client(call))])
        )

    async def get_campaign(self, call: Call) -> Reply:
        """GET {base}/dialler/campaigns/{DiallerCampaignsID}"""
        campaign = self._campaigns.get(_int_path(call, "campaign_id", "DiallerCampaignsID"), _client(call))
        return Reply(200, views.records([views.campaign(campaign, _client(call))]))

    # -- reading contacts ------------------------------------------------------------------------------

    async def list_contacts(self, call: Call) -> Reply:
        """GET {base}/dialler/contacts[?diallerCampaignsID=]"""
        campaign_id = _int_query(call, "diallerCampaignsID")
        rows = await self._contacts.list_contacts(_client(call), campaign_id)
        return Reply(200, views.listing([views.contact(r) for r in rows]))

    async def get_contact(self, call: Call) -> Reply:
        """GET {base}/dialler/contacts/{id} and {base}/dialler/contacts/contact/{id}"""
        row = await self._contacts.get(_client(call), _int_path(call, "contact_id", "DiallerContactsID"))
        return Reply(200, views.records([views.contact(row)]))

    async def get_by_user_data(self, call: Call) -> Reply:
        """GET {base}/dialler/contacts/contact?userData="""
        rows = await self._contacts.find(_client(call), _user_data(call))
        return Reply(200, views.records([views.contact(r) for r in rows]))

    async def batch_retrieve(self, call: Call) -> Reply:
        """POST {base}/dialler/contacts[?languagesID=] with {UserDataList, IDList}"""
        languages_id = _int_query(call, "languagesID")
        body, _ = await read_json(call.request)
        ids, user_data = self._id_lists(body)
        rows, history = await self._contacts.retrieve(_client(call), ids, user_data)
        items = [views.extended(r, history.get(r.id, []), languages_id) for r in rows]
        return Reply(200, views.records(items))

    # -- changing contacts -----------------------------------------------------------------------------

    async def import_contact(self, call: Call) -> Reply:
        """POST {base}/dialler/contacts/import?overwriteDuplicates="""
        overwrite = _bool_query(call, "overwriteDuplicates", default=False)
        body, raw = await read_json(call.request)
        if not isinstance(body, dict):
            raise BadRequest("Request body must be one contact object")

        async def apply() -> Reply:
            row, _ = await self._contacts.import_contact(
                _client(call), body, overwrite=overwrite, reference_id=reference_id(call.request)
            )
            return Reply(200, views.records([views.contact(row)]))

        return await self._correlated(call, "ImportContact", raw, apply)

    async def delete_contact(self, call: Call) -> Reply:
        """DELETE {base}/dialler/contacts/contact/{id}"""
        contact_id = _int_path(call, "contact_id", "DiallerContactsID")

        async def apply() -> Reply:
            await self._contacts.delete(_client(call), contact_id, reference_id(call.request))
            return Reply(200, {"status": 200})

        return await self._correlated(call, "DeleteContact", b"", apply)

    async def delete_by_user_data(self, call: Call) -> Reply:
        """DELETE {base}/dialler/contacts/contact?userData= (the first match only, as jtel does)"""
        user_data = _user_data(call)

        async def apply() -> Reply:
            await self._contacts.delete_by_user_data(_client(call), user_data, reference_id(call.request))
            return Reply(200, {"status": 200})

        return await self._correlated(call, "DeleteContact", b"", apply)

    async def batch_delete(self, call: Call) -> Reply:
        """DELETE {base}/dialler/contacts with {UserDataList, IDList}"""
        body, raw = await read_json(call.request)
        ids, user_data = self._id_lists(body)

        async def apply() -> Reply:
            r = await self._contacts.batch_delete(_client(call), ids, user_data, reference_id(call.request))
            return Reply(
                200,
                {
                    "DeletedIDs": r.deleted_ids,
                    "NotDeletedIDs": r.not_deleted_ids,
                    "NotFoundIDs": r.not_found_ids,
                    "DeletedUserData": r.deleted_user_data,
                    "NotDeletedUserData": r.not_deleted_user_data,
                    "NotFoundUserData": r.not_found_user_data,
                    "count": r.deleted_count,
                    "status": 200,
                },
            )

        return await self._correlated(call, "DeleteContacts", raw, apply)

    async def lock_contact(self, call: Call) -> Reply:
        """PATCH {base}/dialler/contacts/contact/{id}/lock"""
        return await self._lock(call, True, _int_path(call, "contact_id", "DiallerContactsID"), None)

    async def unlock_contact(self, call: Call) -> Reply:
        """PATCH {base}/dialler/contacts/contact/{id}/unlock"""
        return await self._lock(call, False, _int_path(call, "contact_id", "DiallerContactsID"), None)

    async def lock_by_user_data(self, call: Call) -> Reply:
        """PATCH {base}/dialler/contacts/contact/lock?userData="""
        return await self._lock(call, True, None, _user_data(call))

    async def unlock_by_user_data(self, call: Call) -> Reply:
        """PATCH {base}/dialler/contacts/contact/unlock?userData= (also .../lockunlock?userData=)"""
        return await self._lock(call, False, None, _user_data(call))

    async def _lock(self, call: Call, locked: bool, contact_id: int | None, user_data: str | None) -> Reply:
        ref = reference_id(call.request)

        async def apply() -> Reply:
            if contact_id is not None:
                await self._contacts.set_locked(_client(call), contact_id, locked, ref)
            else:
                assert user_data is not None
                await self._contacts.set_locked_by_user_data(_client(call), user_data, locked, ref)
            return Reply(200, {"status": 200})

        return await self._correlated(call, "LockContact" if locked else "UnlockContact", b"", apply)

    # -- helpers ---------------------------------------------------------------------------------------

    def _id_lists(self, body: Any) -> tuple[list[int], list[str]]:
        if not isinstance(body, dict):
            raise BadRequest("Request body must be an object with UserDataList and/or IDList")
        unknown = sorted(set(body) - {"UserDataList", "IDList"})
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(unknown[:10])}")
        ids = body.get("IDList") or []
        user_data = body.get("UserDataList") or []
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise BadRequest("IDList must be a list of integers")
        if not all(_INT64_MIN <= i <= _INT64_MAX for i in ids):
            # A DiallerContactsID is a signed 64-bit integer; larger ones would overflow the store's query.
            raise BadRequest("IDList values must be 64-bit integers")
        if not isinstance(user_data, list) or not all(isinstance(u, str) for u in user_data):
            raise BadRequest("UserDataList must be a list of strings")
        if not ids and not user_data:
            raise BadRequest("IDList or UserDataList is mandatory")
        if len(ids) + len(user_data) > self._max_batch:
            raise BadRequest(f"At most {self._max_batch} IDs and UserData values per request")
        return ids, user_data


def _int_path(call: Call, key: str, name: str) -> int:
    try:
        value = int(call.request.match_info[key])
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not 0 < value <= _INT64_MAX:
        raise BadRequest(f"{name} must be a positive integer")
    return value


def _int_query(call: Call, key: str) -> int | None:
    raw = call.request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{key} must be an integer") from None


def _bool_query(call: Call, key: str, *, default: bool) -> bool:
    raw = call.request.query.get(key)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"{key} must be true or false")


def _user_data(call: Call) -> str:
    value = call.request.query.get("userData")
    if value is None or value == "":
        raise MissingParameter("userData query parameter is mandatory")
    if len(value) > 64:
        raise BadRequest("userData is longer than 64 characters")
    return value


def _client(call: Call) -> int:
    assert call.client_id is not None  # set by authenticate
    return call.client_id
