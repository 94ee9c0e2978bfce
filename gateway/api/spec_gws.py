"""The GWS outbound dialect's operations and schemas; request bodies come from the pydantic models."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from gateway.api import gws_schemas as m
from gateway.api.errors import GWS_CODES
from gateway.api.spec import Dialect, Operation, Schema, header, model_schemas, nullable, obj, query, ref

ME: Final = "/api/v2/me"
DEVICE_PATH: Final = "/devices/5c0c2f1e-6f1b-4d7a-9a3e-1b2c3d4e5f60"  # the demo agent1's device

# operationName -> body model, per URL (gws.py dispatches on the same names).
RECORD_OPERATIONS: Final[dict[str, type[BaseModel]]] = {
    "CompleteRecord": m.CompleteRecord,
    "RejectRecord": m.RecordOp,
    "DoNotCallRecord": m.DoNotCallRecord,
    "RescheduleRecord": m.RescheduleRecord,
    "UpdateRecord": m.UpdateRecord,
    "GetChainedRecord": m.GetChainedRecord,
}
RECORDS_OPERATIONS: Final[dict[str, type[BaseModel]]] = {"AddRecord": m.AddRecord, "DoNotCallRecord": m.DoNotCallNumber}
CAMPAIGN_OPERATIONS: Final[dict[str, type[BaseModel]]] = {
    "StartPreviewSession": m.CampaignOp,
    "GetPreviewRecord": m.CampaignOp,
    "EndPreviewSession": m.CampaignOp,
}


def _bodies() -> dict[str, Schema]:
    """One component per operation body: the model's schema with operationName pinned to its name(s)."""
    models: list[type[BaseModel]] = [*RECORD_OPERATIONS.values(), *RECORDS_OPERATIONS.values(), m.CampaignOp]
    defs = model_schemas(list(dict.fromkeys(models)))
    out: dict[str, Schema] = {}
    named: list[tuple[str, list[str], type[BaseModel]]] = [
        *((f"Gws{name}", [name], model) for name, model in RECORD_OPERATIONS.items()),
        ("GwsAddRecord", ["AddRecord"], m.AddRecord),
        ("GwsDoNotCallNumber", ["DoNotCallRecord"], m.DoNotCallNumber),
        ("GwsCampaignOperation", list(CAMPAIGN_OPERATIONS), m.CampaignOp),
    ]
    for component, names, model in named:
        schema = dict(defs[model.__name__])
        schema["title"] = component
        schema["properties"] = {**schema["properties"], "operationName": {"enum": names}}
        out[component] = schema
    return out


def _one_of(names: list[str]) -> Schema:
    return {"anyOf": [ref(n) for n in names]}


_STR: Final[Schema] = {"type": "string"}
_INT: Final[Schema] = {"type": "integer"}
SCHEMAS: Final[dict[str, Schema]] = {
    **_bodies(),
    "GwsOk": obj({"statusCode": {"const": 0}}),
    "GwsError": obj({"statusCode": {"enum": sorted(GWS_CODES)}, "statusMessage": _STR}),
    "GwsMe": obj(
        {
            "statusCode": {"const": 0},
            "user": obj(
                {
                    "id": _STR,
                    "userName": _STR,
                    "roles": {"type": "array", "items": _STR},
                    "skills": {"type": "array", "items": obj({"name": _STR, "level": _INT})},
                    "devices": {
                        "type": "array",
                        "items": obj({"id": _STR, "path": _STR, "deviceState": {"const": "Active"}}),
                    },
                }
            ),
        }
    ),
    "GwsOperation": obj(
        {
            "statusCode": {"const": 0},
            "operation": obj(
                {
                    "referenceId": _STR,
                    "operationName": _STR,
                    "state": {"enum": ["Done", "Pending"]},
                    "httpStatus": nullable(_INT),
                    "statusCode": nullable(_INT),
                    "statusMessage": nullable(_STR),
                    "notifications": {"type": "array", "items": {"type": "object"}},
                }
            ),
        }
    ),
    "GwsNotifications": obj(
        {
            "statusCode": {"const": 0},
            "notifications": {
                "type": "array",
                "items": obj({"channel": _STR, "data": {"type": "object"}}, closed=False),
                "description": "the identity's own notifications after `after`, oldest first; data.event.replayId",
            },
            "latestReplayId": {"type": "integer", "description": "resume from here (`after` when nothing came)"},
            "more": {
                "type": "boolean",
                "description": "true when `limit` cut the list: ask again after latestReplayId",
            },
        }
    ),
}

_CSRF = (header("X-CSRF-TOKEN", _STR, "the token a GET answered; needed when the cookie alone authenticates"),)
_POST_ERRORS = (400, 401, 403, 404, 409, 500)


def _example(name: str, **fields: Any) -> dict[str, Any]:
    return {"operationName": name, "applicationId": 101, "devicePath": DEVICE_PATH, **fields}


OPERATIONS: Final = (
    Operation("GET", ME, "gwsMe", "The agent and its device", ref("GwsMe"), (401, 500), handler="me"),
    Operation("GET", ME + "/operations/{reference_id}", "gwsGetOperation", "State and notifications of an operation",
              ref("GwsOperation"), (401, 404, 500), handler="operation"),
    Operation("GET", ME + "/notifications", "gwsNotifications", "Catch up on missed notifications (replay over REST)",
              ref("GwsNotifications"), (400, 401, 500), handler="notifications",
              params=(query("after", {"type": "integer", "minimum": -2}, "the last replayId received; -2: all retained",
                            required=True),
                      query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (1000)"))),
    Operation("POST", ME + "/outbound-records", "gwsRecords", "AddRecord, or DoNotCallRecord by phoneNumber",
              ref("GwsOk"), _POST_ERRORS, handler="records", params=_CSRF,
              body=_one_of(["GwsAddRecord", "GwsDoNotCallNumber"]),
              example=_example("DoNotCallRecord", campaignName="Retention", phoneNumber="+4989000000")),
    Operation("POST", ME + "/outbound-records/{record_handle}", "gwsRecord", "An operation on a held record",
              ref("GwsOk"), _POST_ERRORS, handler="record", params=_CSRF,
              body=_one_of([f"Gws{name}" for name in RECORD_OPERATIONS]),
              example=_example("RejectRecord", campaignName="Retention", callingList="retention_list")),
    Operation("POST", ME + "/outbound-campaigns/{campaign_name}", "gwsCampaign", "Preview session and records",
              ref("GwsOk"), _POST_ERRORS, handler="campaign", params=_CSRF, body=ref("GwsCampaignOperation"),
              example=_example("StartPreviewSession")),
)  # fmt: skip

GWS: Final = Dialect(
    tag="gws",
    prefix=ME,
    description="Genesys Web Services outbound API for agent desktops: HTTP Basic (then the JSESSIONID cookie). "
    "Results arrive on the agent's CometD channels; errors are {statusCode, statusMessage}.",
    security=({"basicAuth": []}, {"sessionCookie": []}),
    error=ref("GwsError"),
    path_params={
        "reference_id": {"schema": _STR, "description": "the operation's referenceId", "example": "123456789"},
        "record_handle": {
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            "description": "the record handle (a jtel DiallerContactsID); anything else is 404",
            "example": 1,
        },
        "campaign_name": {"schema": _STR, "description": "the campaign's name", "example": "Retention"},
    },
    operations=OPERATIONS,
    schemas=SCHEMAS,
)
