"""The SNtial Wait dialect's operations and schemas."""

from __future__ import annotations

from typing import Final

from gateway.api.errors import SNTIAL_STATUS_TEXT
from gateway.api.spec import Dialect, Operation, Schema, header, link, model_schemas, nullable, obj, query, ref
from gateway.services.waitfield_input import NUMBER
from gateway.settings import QueueTimes

BASE: Final = "/api/v1/SNtialWait"
STATES: Final = ("waiting", "routed", "connected", "handled", "elapsed", "removed")
_STR: Final[Schema] = {"type": "string"}
_INT: Final[Schema] = {"type": "integer"}
_TIME: Final[Schema] = {"type": "string", "description": "ISO 8601, 7 fraction digits, offset"}


def _settings() -> tuple[Schema, Schema]:
    """QueueTimes as answered (every key) and as a PUT body (any of the keys), from the settings model."""
    update = model_schemas([QueueTimes])["QueueTimes"]
    answer = {**model_schemas([QueueTimes], mode="serialization")["QueueTimes"], "title": "SntialQueueSettings"}
    answer["required"] = list(answer["properties"])
    return answer, {**update, "title": "SntialQueueSettingsUpdate"}


def envelope(item: Schema) -> Schema:
    """The success envelope `{statusText: OK, statusCode: 200, item}`."""
    return obj({"statusText": {"const": "OK"}, "statusCode": {"const": 200}, "item": item})


_PHONE: Final[Schema] = {"type": "string", "pattern": f"^{NUMBER.pattern}$"}
_CREATE = obj(
    {
        "externalId": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"\S"},
        "callingNumber": _PHONE,
        "calledNumber": _PHONE,
        "queue": {"type": "string", "minLength": 1, "description": "a configured queue's name"},
        "additional": nullable(
            {
                "type": "object",
                "description": "at most waitfield.max_additional_entries entries (50), 16 KiB in all",
                "maxProperties": 50,
                "propertyNames": {"minLength": 1, "maxLength": 64},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            }
        ),
        "priority": {"type": "integer", "minimum": 0, "maximum": 100, "description": "default: the queue's"},
        "skills": {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
    },
    required=["externalId", "callingNumber", "calledNumber", "queue"],
    closed=False,  # other fields are ignored
)
_ROUTING = obj(
    {
        "state": {"enum": [1, 2, 3, 4], "description": "1 waiting, 2 connected, 3 handled, 4 withdrawn"},
        "url": {"type": "null"},
        "id": _STR,
        "type": {"const": "CCOBJECTIN"},
        "from": _STR,
        "to": _STR,
        "queue": _STR,
        "priority": _INT,
        "properties": {
            "type": "array",
            "items": obj(
                {"name": _STR, "value": nullable(_STR), "hidden": {"type": "boolean"}, "url": {"type": "null"}}
            ),
        },
        "skills": {"type": "array", "items": _STR},
        "createdAt": _TIME,
        "waitingSince": _TIME,
        "connectedAt": nullable(_TIME),
        "handledAt": nullable(_TIME),
        "disconnectedAt": nullable(_TIME),
        "recordHandle": _INT,
        "agent": {"type": "string", "description": "who took it (once connected)"},
    },
    required=[
        *("state", "url", "id", "type", "from", "to", "queue", "priority", "properties", "skills", "createdAt"),
        *("waitingSince", "connectedAt", "handledAt", "disconnectedAt", "recordHandle"),
    ],
)
_CONTACT = obj(
    {
        "id": {"type": "string", "format": "uuid"},
        "state": {"enum": list(STATES)},
        "createdAt": _TIME,
        "externalId": _STR,
        "callingNumber": _STR,
        "calledNumber": _STR,
        "additional": nullable({"type": "object", "additionalProperties": nullable(_STR)}),
        "priority": _INT,
        "routingObjectId": nullable(_STR),
        "routingObject": nullable(ref("SntialRoutingObject")),
        "willBeRoutedAt": _TIME,
        "routedAt": nullable(_TIME),
        "waitingSince": _TIME,
        "removedAt": nullable(_TIME),
        "willElapseAt": nullable(_TIME),
        "estimatedWaitingTime": _INT,
        "estimatedWaitingTimeMinutes": _INT,
        "settings": ref("SntialQueueSettings"),
        "skills": {"type": "array", "items": _STR},
        "queue": _STR,
        "queueId": _STR,
        "queueSkillsId": _STR,
        "queueSkills": _STR,
    }
)
_ANSWER, _UPDATE = _settings()
SCHEMAS: Final[dict[str, Schema]] = {
    "SntialError": obj(
        {
            "statusText": {"enum": [*SNTIAL_STATUS_TEXT.values(), "Error"]},
            "statusCode": _INT,
            "item": {"type": "null"},
            "message": {"type": "string", "description": "what is wrong (not on 404)"},
        },
        required=["statusText", "statusCode", "item"],
    ),
    "SntialCreateContact": _CREATE,
    "SntialContact": _CONTACT,
    "SntialRoutingObject": _ROUTING,
    "SntialQueueSettings": _ANSWER,
    "SntialQueueSettingsUpdate": _UPDATE,
}

_REFERENCE = (
    query("referenceId", {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"}, "correlates retries and the ack"),
    header("X-Reference-Id", {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"}, "the same as ?referenceId="),
)
_FILTERS = (
    query("queue", _STR, "only this queue's contacts", example="Support"),
    query("state", {"enum": list(STATES)}, "only contacts in this state"),
    query("externalId", _STR, "only contacts with this externalId"),
)
_CREATE_EXAMPLE: Final = {
    "externalId": "4b575daf",
    "callingNumber": "+491701234567",
    "calledNumber": "54321",
    "queue": "Support",
    "additional": {"Vorname": "Max", "Nachname": "Moritz"},
}
_ONE = envelope(ref("SntialContact"))
_CREATED: Final = {
    name: link(name, id="$response.body#/item/id")
    for name in ("sntialGetContact", "sntialRemoveContact", "sntialRemoveContactPost")
}
_REMOVE_ERRORS = (400, 401, 404, 409, 500)

OPERATIONS: Final = (
    Operation("POST", BASE + "/contact", "sntialCreateContact", "CreateContact: a caller starts waiting",
              _ONE, (400, 401, 409, 413, 500), handler="create", params=_REFERENCE,
              body=ref("SntialCreateContact"), example=_CREATE_EXAMPLE, links=_CREATED),
    Operation("GET", BASE + "/contacts", "sntialListContacts", "Contacts by queue, state and externalId",
              envelope({"type": "array", "items": ref("SntialContact")}), (400, 401, 500), handler="list_contacts",
              params=_FILTERS),
    Operation("GET", BASE + "/contact/{id}", "sntialGetContact", "GetContact", _ONE, (401, 404, 500), handler="get"),
    Operation("DELETE", BASE + "/contact/{id}", "sntialRemoveContact", "RemoveContact (idempotent)",
              _ONE, _REMOVE_ERRORS, handler="remove", params=_REFERENCE),
    Operation("POST", BASE + "/contact/remove/{id}", "sntialRemoveContactPost", "RemoveContact (POST form)",
              _ONE, _REMOVE_ERRORS, handler="remove", params=_REFERENCE),
    Operation("GET", BASE + "/queues/{queue}/settings", "sntialGetQueueSettings", "A queue's timing",
              envelope(ref("SntialQueueSettings")), (401, 404, 500), handler="get_settings"),
    Operation("PUT", BASE + "/queues/{queue}/settings", "sntialPutQueueSettings", "Change a queue's timing",
              envelope(ref("SntialQueueSettings")), (400, 401, 404, 413, 500), handler="put_settings",
              body=ref("SntialQueueSettingsUpdate"), example={"waitingFieldMultiplier": 10}),
)  # fmt: skip

SNTIAL: Final = Dialect(
    tag="sntial",
    prefix=BASE,
    description="SNtial Wait waiting field: Bearer token of a service or supervisor. Every answer is "
    "{statusText, statusCode, item}; errors have item null and (but 404) a message.",
    security=({"bearerAuth": []},),
    error=ref("SntialError"),
    path_params={
        "id": {"schema": _STR, "description": "the contact's id", "example": "ea937e24-9f50-4ef2-a3df-dc2f4d8a9f46"},
        "queue": {"schema": _STR, "description": "the queue's name", "example": "Support"},
    },
    operations=OPERATIONS,
    schemas=SCHEMAS,
)
