"""The jtel dialler contacts dialect's operations and schemas; contact schemas come from the field table."""

from __future__ import annotations

from typing import Final

from gateway.api.spec import Dialect, Operation, Schema, header, link, nullable, obj, query, ref
from gateway.services.contact_fields import (
    DATETIME_FIELDS,
    INTEGER_FIELDS,
    NUMBER_FIELDS,
    PHONE_FIELDS,
    SERVER_FIELDS,
    TEXT_FIELDS,
)

BASE: Final = "/rest/v1.0/{client_id}/dialler"
INT64: Final[Schema] = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
ID: Final[Schema] = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_STR: Final[Schema] = {"type": "string"}
_INT: Final[Schema] = {"type": "integer"}
_NOT_BLANK: Final = r"\S"


def _field_types() -> dict[str, Schema]:
    """Each client field's JSON type (as answered: no length limits, null when absent)."""
    kinds = (
        (TEXT_FIELDS, "string"),
        (NUMBER_FIELDS, "number"),
        (INTEGER_FIELDS, "integer"),
        (DATETIME_FIELDS, "string"),
    )
    return {name: nullable({"type": kind}) for names, kind in kinds for name in names}


def contact_properties() -> dict[str, Schema]:
    """The properties of a DiallerContacts record, in the order they are answered."""
    props: dict[str, Schema] = {"ID": _INT, "DiallerCampaignsID": _INT, **_field_types()}
    props |= {
        "dtImported": _STR,
        "dtNextTry": nullable(_STR),
        "bLocked": {"type": "boolean"},
        "DiallerCampaignsResultCodesID": nullable(_INT),
        "LastAcdAgentEndReasonsID": nullable(_INT),
        "bLastResultMailbox": nullable({"type": "boolean"}),
    }
    for n in range(1, 7):
        props[f"nTriesPhoneNumber{n}"] = _INT
        props[f"bPhoneNumber{n}Invalid"] = nullable({"type": "boolean"})
        props[f"nPhoneNumber{n}LastCause"] = nullable(_INT)
        props[f"PhoneNumber{n}LastAcdAgentEndReasonsID"] = nullable(_INT)
    return props


def import_schema() -> Schema:
    """An import body: the client fields with jtel's types and maximum lengths, per contact_fields.py."""
    props: dict[str, Schema] = {
        "DiallerCampaignsID": {**_INT, "description": "the campaign (or give DiallerCampaignsName)"},
        "DiallerCampaignsName": _STR,
    }
    for name, limit in TEXT_FIELDS.items():
        props[name] = nullable({"type": "string", "maxLength": limit})
    props["Name"] = {"type": "string", "maxLength": TEXT_FIELDS["Name"], "pattern": _NOT_BLANK}
    for name in NUMBER_FIELDS:
        props[name] = nullable({"type": "number"})
    for name in INTEGER_FIELDS:
        props[name] = nullable(INT64)
    for name in DATETIME_FIELDS:
        props[name] = nullable({"type": "string", "format": "date-time"})
    for name in sorted(SERVER_FIELDS):
        props[name] = {"description": "the dialler's own field: accepted and ignored"}
    schema = obj(props, required=["Name"])
    schema["allOf"] = [
        {"anyOf": [{"required": ["DiallerCampaignsID"]}, {"required": ["DiallerCampaignsName"]}]},
        {
            "anyOf": [
                {"required": [p], "properties": {p: {"type": "string", "pattern": _NOT_BLANK}}} for p in PHONE_FIELDS
            ]
        },
    ]
    return schema


def listing(item: Schema) -> Schema:
    """jtel's list envelope (paging fields fixed)."""
    return obj(
        {
            "filter": _STR,
            "limitStart": _INT,
            "limitPageSize": _INT,
            "records": {"type": "array", "items": item},
            "count": _INT,
            "orderBy": _STR,
            "ascending": {"type": "boolean"},
            "status": {"const": 200},
        }
    )


def records(item: Schema) -> Schema:
    """jtel's lookup envelope `{records, count, status}`."""
    return obj({"records": {"type": "array", "items": item}, "count": _INT, "status": {"const": 200}})


_RESULT_CODE = obj(
    {
        "ID": _INT,
        "bDone": {"type": "boolean"},
        "bAborted": {"type": "boolean"},
        "bDelay": {"type": "boolean"},
        "bAppointment": {"type": "boolean"},
        "ExportKey": _STR,
        "Content": _STR,
    }
)
_HISTORY = obj(
    {
        "ID": _INT,
        "DiallerContactsID": _INT,
        "dtCreated": _STR,
        "dtLastModified": _STR,
        "dtResultCodesTry": _STR,
        "DiallerCampaignsResultCodesID": nullable(_INT),
        "DiallerCampaignsResultCodes": nullable(ref("JtelResultCode")),
        "PhoneNumber": nullable(_STR),
        "PhoneNumberOffset": nullable(_INT),
        "UsersID": {"type": "null"},
        "UserName": nullable(_STR),
        "StatisticsPartAID": {"type": "null"},
        "StatisticsPartA": {"type": "null"},
    },
    closed=False,  # plus what the call result recorded (CallResult, CallResultCode, ...)
)
_EXTENDED = obj(
    {
        **contact_properties(),
        "DiallerCampaignsResultCodes": nullable(ref("JtelResultCode")),
        "DiallerContactsHistory": {"type": "array", "items": ref("JtelHistoryEntry")},
    }
)
_CAMPAIGN = obj(
    {"ID": _INT, "Name": _STR, "ClientsID": _INT, "LanguagesID": {}, "ContactPreviewTime": {}},
    required=["ID", "Name", "ClientsID"],
    closed=False,  # plus the campaign's configured jtel fields
)
_LIST_RESULTS = {
    name: {"type": "array", "items": item}
    for name, item in (
        ("DeletedIDs", _INT),
        ("NotDeletedIDs", _INT),
        ("NotFoundIDs", _INT),
        ("DeletedUserData", _STR),
        ("NotDeletedUserData", _STR),
        ("NotFoundUserData", _STR),
    )
}
ID_LISTS: Final = obj(
    {
        "IDList": {"type": "array", "items": INT64, "description": "DiallerContactsIDs"},
        "UserDataList": {"type": "array", "items": _STR},
    },
    required=[],
)
ID_LISTS["anyOf"] = [
    {"required": ["IDList"], "properties": {"IDList": {"minItems": 1}}},
    {"required": ["UserDataList"], "properties": {"UserDataList": {"minItems": 1}}},
]

SCHEMAS: Final[dict[str, Schema]] = {
    "JtelError": obj({"status": _INT, "error": _STR}),
    "JtelStatus": obj({"status": {"const": 200}}),
    "JtelContact": obj(contact_properties()),
    "JtelContactExtended": _EXTENDED,
    "JtelResultCode": _RESULT_CODE,
    "JtelHistoryEntry": _HISTORY,
    "JtelCampaign": _CAMPAIGN,
    "JtelImport": import_schema(),
    "JtelIdLists": ID_LISTS,
    "JtelBatchDeleted": obj({**_LIST_RESULTS, "count": _INT, "status": {"const": 200}}),
}

_REFERENCE = (
    query("referenceId", {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"}, "correlates retries and the ack"),
    header("X-Reference-Id", {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"}, "the same as ?referenceId="),
)
_USER_DATA = {
    "name": "userData",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    "description": "the contact's UserData (the first match, lowest ID, for changes)",
    "example": "CON6174",
}
_READ = (400, 401, 500)
_ONE = (400, 401, 404, 500)
_CHANGE = (400, 401, 404, 409, 500)
_CONTACT = ref("JtelContact")
_STATUS = ref("JtelStatus")


def _lock_operations(method: str) -> tuple[Operation, ...]:
    suffix = "" if method == "PATCH" else method.capitalize()
    c = BASE + "/contacts/contact"
    by_user_data = (_USER_DATA, *_REFERENCE)
    return (
        Operation(method, c + "/lock", f"jtelLockByUserData{suffix}", "Lock the first contact with this UserData",
                  _STATUS, _CHANGE, handler="lock_by_user_data", params=by_user_data),
        Operation(method, c + "/unlock", f"jtelUnlockByUserData{suffix}", "Unlock the first contact with this UserData",
                  _STATUS, _CHANGE, handler="unlock_by_user_data", params=by_user_data),
        Operation(method, c + "/lockunlock", f"jtelLockUnlockByUserData{suffix}", "Unlock (jtel's lockunlock name)",
                  _STATUS, _CHANGE, handler="unlock_by_user_data", params=by_user_data),
        Operation(method, c + "/{contact_id}/lock", f"jtelLockContact{suffix}", "Lock a contact (never offered)",
                  _STATUS, _CHANGE, handler="lock_contact", params=_REFERENCE),
        Operation(method, c + "/{contact_id}/unlock", f"jtelUnlockContact{suffix}", "Unlock a contact",
                  _STATUS, _CHANGE, handler="unlock_contact", params=_REFERENCE),
    )  # fmt: skip


_ID_LISTS_EXAMPLE: Final = {"IDList": [1, 2], "UserDataList": ["CON6174"]}
_IMPORT_EXAMPLE: Final = {
    "DiallerCampaignsID": 1,
    "Name": "Mustermann",
    "PhoneNumber1": "+4989123456",
    "UserData": "CON6174",
}

# What a client can do next with an imported contact's ID (schemathesis' stateful phase follows these).
_IMPORTED: Final = {
    name: link(name, client_id="$request.path.client_id", contact_id="$response.body#/records/0/ID")
    for name in ("jtelGetContact", "jtelLockContact", "jtelUnlockContact", "jtelDeleteContact")
}

# Static paths come before the `{id}` ones: the router tries them in this order.
OPERATIONS: Final = (
    Operation("GET", BASE + "/campaigns", "jtelListCampaigns", "The campaigns this ClientsID sees",
              listing(ref("JtelCampaign")), _READ, handler="list_campaigns"),
    Operation("GET", BASE + "/campaigns/{campaign_id}", "jtelGetCampaign", "One campaign",
              records(ref("JtelCampaign")), _ONE, handler="get_campaign"),
    Operation("GET", BASE + "/contacts", "jtelListContacts", "All contacts (of one campaign)",
              listing(_CONTACT), _ONE, handler="list_contacts",
              params=(query("diallerCampaignsID", INT64, "only this campaign's contacts", example=1),)),
    Operation("POST", BASE + "/contacts", "jtelRetrieveContacts", "Batch retrieve with result code and history",
              records(ref("JtelContactExtended")), (400, 401, 413, 500), handler="batch_retrieve",
              params=(query("languagesID", INT64, "result-code texts: 1 German, 2 English (default)", example=2),),
              body=ref("JtelIdLists"), example=_ID_LISTS_EXAMPLE),
    Operation("DELETE", BASE + "/contacts", "jtelDeleteContacts", "Batch delete (every contact of each UserData)",
              ref("JtelBatchDeleted"), (400, 401, 409, 413, 500), handler="batch_delete", params=_REFERENCE,
              body=ref("JtelIdLists"), example=_ID_LISTS_EXAMPLE),
    Operation("POST", BASE + "/contacts/import", "jtelImportContact", "Import (or overwrite) one contact",
              records(_CONTACT), (400, 401, 404, 409, 413, 500), handler="import_contact",
              params=(query("overwriteDuplicates", {"type": "boolean"}, "replace the first one with this UserData"),
                      *_REFERENCE),
              body=ref("JtelImport"), example=_IMPORT_EXAMPLE, links=_IMPORTED),
    Operation("GET", BASE + "/contacts/contact", "jtelGetByUserData", "Every contact with this UserData",
              records(_CONTACT), _ONE, handler="get_by_user_data", params=(_USER_DATA,)),
    Operation("DELETE", BASE + "/contacts/contact", "jtelDeleteByUserData", "Delete the first one with this UserData",
              _STATUS, _CHANGE, handler="delete_by_user_data", params=(_USER_DATA, *_REFERENCE)),
    Operation("GET", BASE + "/contacts/contact/{contact_id}", "jtelGetContactAlias", "One contact (second path)",
              records(_CONTACT), _ONE, handler="get_contact"),
    Operation("DELETE", BASE + "/contacts/contact/{contact_id}", "jtelDeleteContact", "Delete one contact",
              _STATUS, _CHANGE, handler="delete_contact", params=_REFERENCE),
    Operation("GET", BASE + "/contacts/{contact_id}", "jtelGetContact", "One contact",
              records(_CONTACT), _ONE, handler="get_contact"),
    # Lock and unlock: PATCH as jtel documents; POST and PUT are accepted too.
    *(op for method in ("PATCH", "POST", "PUT") for op in _lock_operations(method)),
)  # fmt: skip

JTEL: Final = Dialect(
    tag="jtel",
    prefix="/rest/v1.0",
    description="jtel dialler contacts API: Bearer token of a service or supervisor whose clients include the "
    "ClientsID. Errors are {status, error}.",
    security=({"bearerAuth": []},),
    error=ref("JtelError"),
    path_params={
        "client_id": {"schema": INT64, "description": "jtel ClientsID", "example": 1},
        "campaign_id": {"schema": ID, "description": "DiallerCampaignsID", "example": 1},
        "contact_id": {"schema": ID, "description": "DiallerContactsID", "example": 1},
    },
    operations=OPERATIONS,
    schemas=SCHEMAS,
)
