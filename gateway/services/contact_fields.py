"""The jtel DiallerContacts fields: types and length limits (dialler-and-waitfield.md §3.1, §3.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from gateway.services.errors import InvalidInput

# Text fields a client may send, with jtel's maximum length (3.19+ widths). None = jtel says unlimited;
# we still cap those (LONG_TEXT) so one request cannot store megabytes in a field.
LONG_TEXT: Final = 65_535
TEXT_FIELDS: Final[dict[str, int]] = {
    "UserData": 64,
    "Client": 64,
    "Service": 64,
    "ReferenceNumber": 64,
    "Name": 64,
    "FirstName": 64,
    "Salutation": 16,
    "Title": 16,
    "Company": 64,
    "Address": 64,
    "PostalCode": 10,
    "City": 64,
    "Country": 64,
    "Region": 256,
    "AccountOwner": 64,
    "AccountBank": 32,
    "AccountNationalBankCode": 10,
    "AccountBIC": 11,
    "AccountNumber": 20,
    "AccountIBAN": 34,
    **{f"PhoneNumber{n}": 32 for n in range(1, 7)},
    "FaxNumber": 32,
    "Email": 256,
    "Website": LONG_TEXT,
    "Comment": LONG_TEXT,
    "ReservedUsersUID": 32,
    "FollowUpUsersUID": 32,
    "ResultCodesExportKey": 32,
    "Manufacturer": 64,
    "Model": 64,
    "Tag": 64,
    "ExternalSystemLink": 2048,
}
NUMBER_FIELDS: Final = ("Amount",)
INTEGER_FIELDS: Final = ("RandomSortOrder",)
DATETIME_FIELDS: Final = ("FollowUpDateTime", "dtBeginDate", "dtEndDate")
CLIENT_FIELDS: Final = (*TEXT_FIELDS, *NUMBER_FIELDS, *INTEGER_FIELDS, *DATETIME_FIELDS)
PHONE_FIELDS: Final = tuple(f"PhoneNumber{n}" for n in range(1, 7))
CAMPAIGN_FIELDS: Final = ("DiallerCampaignsID", "DiallerCampaignsName")

# Fields the dialler owns: accepted in an import body (clients post exported records back) but ignored.
SERVER_FIELDS: Final = frozenset(
    {
        "ID",
        "dtImported",
        "dtNextTry",
        "bLocked",
        "DiallerCampaignsResultCodesID",
        "LastAcdAgentEndReasonsID",
        "bLastResultMailbox",
        *(f"bPhoneNumber{n}Invalid" for n in range(1, 7)),
        *(f"nTriesPhoneNumber{n}" for n in range(1, 7)),
        *(f"nPhoneNumber{n}LastCause" for n in range(1, 7)),
        *(f"PhoneNumber{n}LastAcdAgentEndReasonsID" for n in range(1, 7)),
    }
)

# Every field an import body may hold, for one set lookup per key (CLIENT_FIELDS is an ordered tuple).
_KNOWN: Final = frozenset(CLIENT_FIELDS) | frozenset(CAMPAIGN_FIELDS) | SERVER_FIELDS


def check_field(name: str, value: Any) -> None:
    """Raise InvalidInput unless `value` has the client field `name`'s type and length (null always fits)."""
    if value is None:
        return
    if name in TEXT_FIELDS:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string")
        if len(value) > TEXT_FIELDS[name]:
            raise InvalidInput(f"{name} is longer than {TEXT_FIELDS[name]} characters")
    elif name in NUMBER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{name} must be a number")
    elif name in INTEGER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be an integer")
    elif name in DATETIME_FIELDS:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a date-time string like 2020-01-01T00:00:00")
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{name} is not a valid date-time (ISO 8601)") from None


def clean_contact(body: dict[str, Any]) -> dict[str, Any]:
    """Check an import body field by field; return the client fields (all of them, absent ones null).

    Raises InvalidInput naming the first offending field.
    """
    unknown = sorted(k for k in body if k not in _KNOWN)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown[:10])}")
    data: dict[str, Any] = {}
    for name in CLIENT_FIELDS:
        value = data[name] = body.get(name)
        if value is not None:  # null always fits; most of the 44 fields are absent from a body
            check_field(name, value)
    if not (data.get("Name") or "").strip():
        raise InvalidInput("Name is mandatory")
    if not any((data.get(p) or "").strip() for p in PHONE_FIELDS):
        raise InvalidInput("At least one of PhoneNumber1 ... PhoneNumber6 is mandatory")
    return data
