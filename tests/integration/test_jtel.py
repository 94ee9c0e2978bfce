"""The jtel dialler contacts dialect over real HTTP, against a real SQLite file."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import CRM_TOKEN, IDENTITIES, OTHER_TOKEN, Gateway, StartGateway
from tests.integration.jtel_client import Jtel


async def count(jtel: Jtel) -> int:
    reply = await jtel.call("GET", "/contacts")
    assert reply.status == 200
    return int(reply.body["count"])


# -- authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "client", "header"),
    [
        (None, 1, None),  # no credentials
        ("not-a-valid-token-at-all", 1, None),
        (CRM_TOKEN, 2, None),  # a ClientsID the token does not hold
        (CRM_TOKEN, 99, None),  # a ClientsID nobody holds
        ("agent1-token-0123456789abcdef", 1, None),  # agents do not use the dialler API
        (None, 1, "Basic c3VwZXJ2aXNvcjE6c3VwLXBhc3M="),  # Basic is not jtel's scheme
    ],
)
async def test_unauthorized(gw: Gateway, token: str | None, client: int, header: str | None) -> None:
    """Wrong or missing token, or a ClientsID it does not hold: 401 {status, error}, nothing more."""
    async with aiohttp.ClientSession() as http:
        jtel = Jtel(http, gw.base, token, client)
        reply = await jtel.call("GET", "/campaigns", headers={"Authorization": header} if header else None)
    assert reply.status == 401
    assert reply.body == {"status": 401, "error": "Unauthorized: invalid bearer token or ClientsID"}


async def test_clients_id_must_be_a_number(gw: Gateway) -> None:
    """A ClientsID that is not a number is a bad request."""
    async with aiohttp.ClientSession() as http:
        reply = await Jtel(http, gw.base, CRM_TOKEN, "abc").call("GET", "/campaigns")
    assert reply.status == 400 and "ClientsID" in reply.body["error"]


# -- campaigns --------------------------------------------------------------------------------------


async def test_campaigns_visible_to_the_client(jtel: Jtel) -> None:
    """A ClientsID sees its own campaigns and those without a client, in the list envelope."""
    reply = await jtel.call("GET", "/campaigns")
    assert reply.status == 200
    body = reply.body
    assert {k: body[k] for k in ("filter", "limitStart", "limitPageSize", "orderBy", "ascending", "status")} == {
        "filter": "",
        "limitStart": 0,
        "limitPageSize": -1,
        "orderBy": "Name",
        "ascending": True,
        "status": 200,
    }
    assert [(c["ID"], c["Name"]) for c in body["records"]] == [(2, "Callbacks"), (1, "Retention")]
    assert body["count"] == 2
    retention = body["records"][1]
    assert retention["ClientsID"] == 1 and retention["ContactPreviewTime"] == 5


async def test_campaign_by_id(jtel: Jtel) -> None:
    """One campaign by ID; another client's campaign or an unknown one is 404 with jtel's text."""
    ok = await jtel.call("GET", "/campaigns/1")
    assert ok.status == 200 and ok.body["records"][0]["Name"] == "Retention" and ok.body["count"] == 1
    for missing in ("/campaigns/3", "/campaigns/999"):
        reply = await jtel.call("GET", missing)
        assert reply.status == 404
        assert reply.body == {"status": 404, "error": "Dialler campaign not found"}
    bad = await jtel.call("GET", "/campaigns/x")
    assert bad.status == 400


# -- import -----------------------------------------------------------------------------------------


async def test_import_by_id_and_by_name(jtel: Jtel) -> None:
    """Import into a campaign by ID or by name; the stored record comes back with ID and nulls."""
    by_id = await jtel.import_contact(UserData="U1", FirstName="Max", Amount=12.5)
    assert by_id.status == 200 and by_id.body["count"] == 1 and by_id.body["status"] == 200
    record = by_id.body["records"][0]
    assert record["ID"] > 0 and record["DiallerCampaignsID"] == 1
    assert record["Name"] == "Mustermann" and record["FirstName"] == "Max" and record["Amount"] == 12.5
    assert record["Company"] is None and record["bLocked"] is False and record["nTriesPhoneNumber1"] == 0
    assert record["dtImported"].count(":") == 2 and "+" not in record["dtImported"]
    by_name = await jtel.import_contact(DiallerCampaignsID=..., DiallerCampaignsName="Callbacks", UserData="U2")
    assert by_name.status == 200 and by_name.body["records"][0]["DiallerCampaignsID"] == 2


async def test_overwrite_duplicates(jtel: Jtel) -> None:
    """overwriteDuplicates=true replaces the first contact with that UserData; false adds another."""
    first = (await jtel.import_contact(UserData="DUP", Company="A")).body["records"][0]
    again = (await jtel.import_contact(overwrite=True, UserData="DUP", Company="B")).body["records"][0]
    assert again["ID"] == first["ID"] and again["Company"] == "B"
    extra = (await jtel.import_contact(overwrite=False, UserData="DUP", Company="C")).body["records"][0]
    assert extra["ID"] != first["ID"]
    assert await count(jtel) == 2
    third = (await jtel.import_contact(overwrite=True, UserData="DUP", Company="D")).body["records"][0]
    assert third["ID"] == first["ID"]  # the first (lowest ID) match


BAD_IMPORTS: list[tuple[dict[str, Any], int, str]] = [
    ({"Name": ...}, 400, "Name is mandatory"),
    ({"Name": "   "}, 400, "Name is mandatory"),
    ({"PhoneNumber1": ...}, 400, "PhoneNumber1 ... PhoneNumber6"),
    ({"DiallerCampaignsID": ...}, 400, "DiallerCampaignsID or DiallerCampaignsName is mandatory"),
    ({"DiallerCampaignsID": 999}, 404, "Dialler campaign not found"),
    ({"DiallerCampaignsID": 3}, 404, "Dialler campaign not found"),  # another client's
    ({"DiallerCampaignsID": ..., "DiallerCampaignsName": "Nope"}, 404, "Dialler campaign not found"),
    ({"DiallerCampaignsID": "1"}, 400, "DiallerCampaignsID must be an integer"),
    ({"Name": 5}, 400, "Name must be a string"),
    ({"Name": "x" * 65}, 400, "Name is longer than 64 characters"),
    ({"PostalCode": "12345678901"}, 400, "PostalCode is longer than 10 characters"),
    ({"PhoneNumber3": "1" * 33}, 400, "PhoneNumber3 is longer than 32 characters"),
    ({"Amount": "12"}, 400, "Amount must be a number"),
    ({"RandomSortOrder": 1.5}, 400, "RandomSortOrder must be an integer"),
    ({"FollowUpDateTime": "tomorrow"}, 400, "FollowUpDateTime is not a valid date-time"),
    ({"Colour": "red"}, 400, "Unknown field(s): Colour"),
]


@pytest.mark.parametrize(("fields", "status", "error"), BAD_IMPORTS)
async def test_bad_imports_change_nothing(jtel: Jtel, fields: dict[str, Any], status: int, error: str) -> None:
    """Each rule breach gets its status and a clear error; the store is left exactly as it was."""
    await jtel.import_contact(UserData="KEEP", Company="kept")
    before = (await jtel.call("GET", "/contacts")).body
    reply = await jtel.import_contact(overwrite=True, UserData="KEEP", **fields)
    assert reply.status == status
    assert reply.body["status"] == status and error in reply.body["error"]
    assert (await jtel.call("GET", "/contacts")).body == before


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null"], ids=["broken", "empty", "array", "string", "null"]
)
async def test_import_body_must_be_an_object(jtel: Jtel, raw: bytes) -> None:
    """Bodies that are not one JSON object get 400."""
    reply = await jtel.call("POST", "/contacts/import", raw=raw)
    assert reply.status == 400 and reply.body["status"] == 400
    assert await count(jtel) == 0


async def test_quotes_and_sql_are_just_text(jtel: Jtel) -> None:
    """Strings full of quotes and SQL are stored and returned verbatim; nothing else changes."""
    nasty = "Robert'); DROP TABLE contacts;--"
    user_data = "x' OR '1'='1"
    created = await jtel.import_contact(Name=nasty, UserData=user_data, Comment='"\\ \u00e9 \U0001f600 %s %%')
    assert created.status == 200
    found = await jtel.call("GET", "/contacts/contact", params={"userData": user_data})
    assert found.status == 200 and found.body["count"] == 1
    assert found.body["records"][0]["Name"] == nasty
    assert found.body["records"][0]["Comment"] == '"\\ \u00e9 \U0001f600 %s %%'
    none = await jtel.call("GET", "/contacts/contact", params={"userData": "' OR 1=1 --"})
    assert none.status == 404
    assert await count(jtel) == 1


async def test_overwrite_flag_must_be_boolean(jtel: Jtel) -> None:
    """overwriteDuplicates takes true or false."""
    reply = await jtel.call(
        "POST",
        "/contacts/import",
        {"DiallerCampaignsID": 1, "Name": "n", "PhoneNumber1": "1"},
        params={"overwriteDuplicates": "maybe"},
    )
    assert reply.status == 400 and "overwriteDuplicates" in reply.body["error"]


# -- reading ----------------------------------------------------------------------------------------


async def test_get_by_id_both_paths(jtel: Jtel) -> None:
    """/contacts/{id} and /contacts/contact/{id} return the same one-record envelope; 404 when missing."""
    cid = (await jtel.import_contact(UserData="G")).body["records"][0]["ID"]
    a = await jtel.call("GET", f"/contacts/{cid}")
    b = await jtel.call("GET", f"/contacts/contact/{cid}")
    assert a.status == b.status == 200 and a.body == b.body
    assert a.body["count"] == 1 and a.body["records"][0]["UserData"] == "G"
    missing = await jtel.call("GET", "/contacts/424242")
    assert missing.status == 404 and missing.body == {"status": 404, "error": "Dialler contact not found"}
    assert (await jtel.call("GET", "/contacts/abc")).status == 400


async def test_other_clients_contacts_are_invisible(gw: Gateway, jtel: Jtel) -> None:
    """A contact in another client's campaign does not exist for this ClientsID."""
    async with aiohttp.ClientSession() as http:
        other = Jtel(http, gw.base, OTHER_TOKEN, 2)
        cid = (await other.import_contact(DiallerCampaignsID=3, UserData="O")).body["records"][0]["ID"]
        assert (await jtel.call("GET", f"/contacts/{cid}")).status == 404
        assert (await jtel.call("DELETE", f"/contacts/contact/{cid}")).status == 404
        assert (await other.call("GET", f"/contacts/{cid}")).status == 200


async def test_get_by_user_data_returns_all_matches(jtel: Jtel) -> None:
    """All contacts with the UserData; 404 when none; userData is required."""
    await jtel.import_contact(UserData="SAME", Company="1")
    await jtel.import_contact(UserData="SAME", Company="2")
    reply = await jtel.call("GET", "/contacts/contact", params={"userData": "SAME"})
    assert reply.status == 200 and reply.body["count"] == 2
    assert [r["Company"] for r in reply.body["records"]] == ["1", "2"]
    assert (await jtel.call("GET", "/contacts/contact", params={"userData": "NONE"})).status == 404
    assert (await jtel.call("GET", "/contacts/contact")).status == 400


async def test_list_with_campaign_filter(jtel: Jtel) -> None:
    """diallerCampaignsID limits the list; an unknown campaign is 404; a non-number is 400."""
    await jtel.import_contact(UserData="A")
    await jtel.import_contact(DiallerCampaignsID=2, UserData="B")
    everything = await jtel.call("GET", "/contacts")
    assert everything.body["count"] == 2 and everything.body["limitPageSize"] == -1
    only = await jtel.call("GET", "/contacts", params={"diallerCampaignsID": "2"})
    assert [r["UserData"] for r in only.body["records"]] == ["B"]
    assert (await jtel.call("GET", "/contacts", params={"diallerCampaignsID": "3"})).status == 404
    assert (await jtel.call("GET", "/contacts", params={"diallerCampaignsID": "x"})).status == 400


async def test_batch_retrieve(jtel: Jtel) -> None:
    """IDs and UserData together; extended data with result code and history; missing ones skipped."""
    a = (await jtel.import_contact(UserData="BA")).body["records"][0]["ID"]
    b = (await jtel.import_contact(UserData="BB")).body["records"][0]["ID"]
    reply = await jtel.call(
        "POST", "/contacts", {"IDList": [a, 999999], "UserDataList": ["BB", "NOPE"]}, params={"languagesID": "1"}
    )
    assert reply.status == 200 and reply.body["count"] == 2 and reply.body["status"] == 200
    records = reply.body["records"]
    assert [r["ID"] for r in records] == [a, b]
    assert records[0]["DiallerCampaignsResultCodes"] is None and records[0]["DiallerContactsHistory"] == []
    assert records[0]["DiallerCampaignsResultCodesID"] is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "IDList or UserDataList is mandatory"),
        ({"IDList": ["1"]}, "IDList must be a list of integers"),
        ({"IDList": [True]}, "IDList must be a list of integers"),
        ({"UserDataList": "U"}, "UserDataList must be a list of strings"),
        ({"IDList": [1], "Extra": 1}, "Unknown field(s): Extra"),
        ([1, 2], "must be an object"),
    ],
)
async def test_batch_retrieve_bad_bodies(jtel: Jtel, body: Any, error: str) -> None:
    """Malformed batch bodies get 400 naming the problem."""
    reply = await jtel.call("POST", "/contacts", body)
    assert reply.status == 400 and error in reply.body["error"]


@pytest.mark.parametrize("big", [2**63, 2**64 - 1])
async def test_ids_beyond_64_bits_are_bad_requests(jtel: Jtel, big: int) -> None:
    """Found by schemathesis: an IDList value over 64 bits was a 500 from the store; now 400, nothing deleted
    (refused where the body is read, gateway/wire/limits.py)."""
    await jtel.import_contact(UserData="CON6174")
    reply = await jtel.call(
        "POST", "/contacts", {"IDList": [big], "UserDataList": ["CON6174"]}, params={"languagesID": "2"}
    )
    assert reply.status == 400
    assert reply.body == {"status": 400, "error": "Request body holds an integer outside the 64-bit range"}
    reply = await jtel.call("DELETE", "/contacts", {"IDList": [big], "UserDataList": ["CON6174"]})
    assert reply.status == 400 and reply.body["error"] == "Request body holds an integer outside the 64-bit range"
    assert await count(jtel) == 1


async def test_batch_size_limit(start_gateway: StartGateway) -> None:
    """More IDs plus UserData than jtel.max_batch: 400; deletes too, and nothing is deleted."""
    gw = await start_gateway(extra={**IDENTITIES, "jtel": {"max_batch": 3}})
    async with aiohttp.ClientSession() as http:
        jtel = Jtel(http, gw.base, CRM_TOKEN)
        ids = [(await jtel.import_contact(UserData=f"L{i}")).body["records"][0]["ID"] for i in range(3)]
        assert (await jtel.call("POST", "/contacts", {"IDList": ids, "UserDataList": ["x"]})).status == 400
        reply = await jtel.call("DELETE", "/contacts", {"IDList": ids, "UserDataList": ["L0"]})
        assert reply.status == 400 and "At most 3" in reply.body["error"]
        assert await count(jtel) == 3


# -- delete -----------------------------------------------------------------------------------------


async def test_delete_by_id_and_by_user_data(jtel: Jtel) -> None:
    """Delete by ID; by UserData only the first match goes; 404 when nothing matches."""
    a = (await jtel.import_contact(UserData="D1")).body["records"][0]["ID"]
    first = (await jtel.import_contact(UserData="D2")).body["records"][0]["ID"]
    second = (await jtel.import_contact(UserData="D2")).body["records"][0]["ID"]
    assert (await jtel.call("DELETE", f"/contacts/contact/{a}")).body == {"status": 200}
    assert (await jtel.call("DELETE", f"/contacts/contact/{a}")).status == 404
    reply = await jtel.call("DELETE", "/contacts/contact", params={"userData": "D2"})
    assert reply.status == 200 and reply.body == {"status": 200}
    assert (await jtel.call("GET", f"/contacts/{first}")).status == 404
    assert (await jtel.call("GET", f"/contacts/{second}")).status == 200
    assert (await jtel.call("DELETE", "/contacts/contact", params={"userData": "NONE"})).status == 404


async def test_batch_delete_reports_six_lists(jtel: Jtel) -> None:
    """All six result lists; every contact with a given UserData is deleted (documented choice)."""
    a = (await jtel.import_contact(UserData="X1")).body["records"][0]["ID"]
    await jtel.import_contact(UserData="X2")
    await jtel.import_contact(UserData="X2")
    keep = (await jtel.import_contact(UserData="KEEP")).body["records"][0]["ID"]
    reply = await jtel.call("DELETE", "/contacts", {"IDList": [a, 777777], "UserDataList": ["X2", "NOT_EXISTS"]})
    assert reply.status == 200
    body = reply.body
    assert body["DeletedIDs"] == [a] and body["NotFoundIDs"] == [777777] and body["NotDeletedIDs"] == []
    assert body["DeletedUserData"] == ["X2"] and body["NotFoundUserData"] == ["NOT_EXISTS"]
    assert body["NotDeletedUserData"] == [] and body["status"] == 200
    assert body["count"] == 3  # contacts deleted: one by ID, two with UserData X2
    remaining = await jtel.call("GET", "/contacts")
    assert [r["ID"] for r in remaining.body["records"]] == [keep]


# -- lock / unlock ----------------------------------------------------------------------------------


async def test_lock_and_unlock(jtel: Jtel) -> None:
    """PATCH lock/unlock by ID and by UserData (and the lockunlock spelling); repeating is harmless."""
    cid = (await jtel.import_contact(UserData="LK", Company="kept")).body["records"][0]["ID"]
    for _ in range(2):
        reply = await jtel.call("PATCH", f"/contacts/contact/{cid}/lock")
        assert reply.status == 200 and reply.body == {"status": 200}
    locked = (await jtel.call("GET", f"/contacts/{cid}")).body["records"][0]
    assert locked["bLocked"] is True and locked["Company"] == "kept"
    assert (await jtel.call("PATCH", "/contacts/contact/unlock", params={"userData": "LK"})).status == 200
    assert (await jtel.call("GET", f"/contacts/{cid}")).body["records"][0]["bLocked"] is False
    assert (await jtel.call("PATCH", "/contacts/contact/lock", params={"userData": "LK"})).status == 200
    assert (await jtel.call("PATCH", "/contacts/contact/lockunlock", params={"userData": "LK"})).status == 200
    assert (await jtel.call("GET", f"/contacts/{cid}")).body["records"][0]["bLocked"] is False
    assert (await jtel.call("PATCH", "/contacts/contact/999999/lock")).status == 404
    assert (await jtel.call("PATCH", "/contacts/contact/lock", params={"userData": "NONE"})).status == 404
    assert (await jtel.call("PATCH", "/contacts/contact/lock")).status == 400
