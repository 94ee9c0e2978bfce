"""The supervisor's views (/api/v2/supervisor): what a wallboard starts from before it follows the events."""

from __future__ import annotations

from typing import Final

from gateway.api.spec import Dialect, Operation, Schema, nullable, obj, ref
from gateway.api.spec_gws import SCHEMAS as GWS_SCHEMAS

SUPERVISOR_PREFIX: Final = "/api/v2/supervisor"

_STR: Final[Schema] = {"type": "string"}
_INT: Final[Schema] = {"type": "integer", "minimum": 0}
_TIME: Final[Schema] = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}


def _list(key: str, item: Schema) -> Schema:
    return obj({"statusCode": {"const": 0}, key: {"type": "array", "items": item}})


SCHEMAS: Final[dict[str, Schema]] = {
    "SupervisorHeld": obj(
        {
            "recordHandle": {"type": "integer"},
            "campaign": nullable(_STR),
            "campaignId": {"type": "integer"},
            "since": nullable(_TIME),
        }
    ),
    "SupervisorAgent": obj(
        {
            "agent": _STR,
            "online": {"type": "boolean", "description": "at least one CometD session on this node"},
            "sessions": _INT,
            "preview": {"type": "array", "items": _STR, "description": "campaigns with a started preview session"},
            "held": {"type": "array", "items": ref("SupervisorHeld")},
        }
    ),
    "SupervisorCampaign": obj(
        {"id": {"type": "integer"}, "name": _STR, "total": _INT, "callable": _INT, "held": _INT, "done": _INT}
    ),
    "SupervisorQueue": obj(
        {
            "queue": _STR,
            "waiting": {**_INT, "description": "callers waiting or routed, not yet taken by an agent"},
            "longestWaitSince": nullable(_TIME),
            "longestWait": {**_INT, "description": "seconds the longest-waiting caller has waited"},
            "estimate": {**_INT, "description": "estimatedWaitingTime (seconds) of a caller joining now"},
            "routedToday": _INT,
            "elapsedToday": _INT,
        }
    ),
    "SupervisorError": GWS_SCHEMAS["GwsError"],
}
SCHEMAS["SupervisorAgents"] = _list("agents", ref("SupervisorAgent"))
SCHEMAS["SupervisorCampaigns"] = _list("campaigns", ref("SupervisorCampaign"))
SCHEMAS["SupervisorQueues"] = _list("queues", ref("SupervisorQueue"))

_ERRORS: Final = (401, 403, 500)

OPERATIONS: Final = (
    Operation("GET", SUPERVISOR_PREFIX + "/agents", "supervisorAgents",
              "Every agent: online, sessions, preview sessions, held records", ref("SupervisorAgents"), _ERRORS,
              handler="agents"),
    Operation("GET", SUPERVISOR_PREFIX + "/campaigns", "supervisorCampaigns",
              "Every campaign: contacts total, callable now, held, done", ref("SupervisorCampaigns"), _ERRORS,
              handler="campaigns"),
    Operation("GET", SUPERVISOR_PREFIX + "/queues", "supervisorQueues",
              "Every waiting-field queue: waiting, longest wait, estimate, routed and elapsed today",
              ref("SupervisorQueues"), _ERRORS, handler="queues"),
)  # fmt: skip

SUPERVISOR: Final = Dialect(
    tag="supervisor",
    prefix=SUPERVISOR_PREFIX,
    description="The supervisor's views for a wallboard: HTTP Basic (or Bearer) of a supervisor or service. "
    "Changes then arrive as events on /v2/agents/**, /v2/dialler/** and /v2/waitfield/**.",
    security=({"basicAuth": []}, {"bearerAuth": []}),
    error=ref("SupervisorError"),
    path_params={},
    operations=OPERATIONS,
    schemas=SCHEMAS,
)
