"""jtel JSON shapes: PascalCase fields, b/n/dt prefixes, null for absent values."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from gateway.services.contact_fields import CLIENT_FIELDS
from gateway.services.result_codes import RESULT_CODES
from gateway.settings import CampaignSettings
from gateway.store.base import ContactRow, HistoryRow


def dt(value: datetime | None) -> str | None:
    """jtel's date-time form: ISO 8601, UTC, milliseconds, no zone (`2020-08-09T02:33:50.347`)."""
    return value.isoformat(timespec="milliseconds") if value is not None else None


def contact(row: ContactRow) -> dict[str, Any]:
    """A DiallerContacts record."""
    data = row.data
    out: dict[str, Any] = {"ID": row.id, "DiallerCampaignsID": row.campaign_id}
    for name in CLIENT_FIELDS:
        out[name] = data.get(name)
    out["dtImported"] = dt(row.imported_at)
    out["dtNextTry"] = dt(row.next_try_at)
    out["bLocked"] = row.locked
    out["DiallerCampaignsResultCodesID"] = row.result_code_id
    out.update(_NOT_KEPT)
    return out


# The record's last fields, which the gateway does not keep: the same values in every record, in jtel's order.
_NOT_KEPT: Final[dict[str, Any]] = {
    "LastAcdAgentEndReasonsID": None,
    "bLastResultMailbox": None,
    **{
        name: value
        for n in range(1, 7)
        for name, value in (
            (f"nTriesPhoneNumber{n}", 0),
            (f"bPhoneNumber{n}Invalid", None),
            (f"nPhoneNumber{n}LastCause", None),
            (f"PhoneNumber{n}LastAcdAgentEndReasonsID", None),
        )
    },
}


def extended(row: ContactRow, history: list[HistoryRow], languages_id: int | None) -> dict[str, Any]:
    """A DiallerContactsExtendedData record: the contact, its result code and its history."""
    out = contact(row)
    code = RESULT_CODES.get(row.result_code_id) if row.result_code_id is not None else None
    out["DiallerCampaignsResultCodes"] = code.to_jtel(languages_id) if code else None
    out["DiallerContactsHistory"] = [history_entry(h, languages_id) for h in history]
    return out


def history_entry(h: HistoryRow, languages_id: int | None) -> dict[str, Any]:
    """One DiallerContactsHistory entry."""
    code = RESULT_CODES.get(h.result_code_id) if h.result_code_id is not None else None
    return {
        "ID": h.id,
        "DiallerContactsID": h.contact_id,
        "dtCreated": dt(h.created_at),
        "dtLastModified": dt(h.created_at),
        "dtResultCodesTry": dt(h.created_at),
        "DiallerCampaignsResultCodesID": h.result_code_id,
        "DiallerCampaignsResultCodes": code.to_jtel(languages_id) if code else None,
        "PhoneNumber": h.phone_number,
        "PhoneNumberOffset": h.phone_offset,
        "UsersID": None,
        "UserName": h.user_name,
        "StatisticsPartAID": None,
        "StatisticsPartA": None,
        **{k: v for k, v in h.data.items() if k not in ("ID", "DiallerContactsID")},
    }


def campaign(c: CampaignSettings, client_id: int) -> dict[str, Any]:
    """A DiallerCampaigns record (our fields plus the configured jtel extras)."""
    return {
        "ID": c.id,
        "Name": c.name,
        "ClientsID": c.client if c.client is not None else client_id,
        "LanguagesID": 2,
        "ContactPreviewTime": None,
        "nMaxParallelLines": None,
        "dtTo": None,
        **c.jtel,
    }


def listing(records: list[dict[str, Any]]) -> dict[str, Any]:
    """jtel's list envelope (paging fields are 'reserved for future use' in jtel: fixed values)."""
    return {
        "filter": "",
        "limitStart": 0,
        "limitPageSize": -1,
        "records": records,
        "count": len(records),
        "orderBy": "Name",
        "ascending": True,
        "status": 200,
    }


def records(items: list[dict[str, Any]]) -> dict[str, Any]:
    """jtel's lookup envelope `{records, count, status}`."""
    return {"records": items, "count": len(items), "status": 200}
