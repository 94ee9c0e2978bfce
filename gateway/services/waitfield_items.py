"""The waiting field's items: the SNtial contact as it is created, and each step's new version of it.

Every step returns a new row (a deep copy): the service installs it only once the store took it, so a step
another node won first leaves this node's copy as it was.
"""

from __future__ import annotations

import copy
import hashlib
import math
from datetime import datetime, timedelta
from typing import Any, Final

from gateway.settings import QueueTimes, WaitQueueSettings
from gateway.store.waitfield import WaitRow

# routingObject.state (the seed shows 2 with connectedAt set): 1 waiting in the queue, 2 connected, 3 handled,
# 4 withdrawn (removed or elapsed).
RO_WAITING, RO_CONNECTED, RO_HANDLED, RO_WITHDRAWN = 1, 2, 3, 4
ACTIVE: Final = ("waiting", "routed")


def sntial_time(value: datetime | None) -> str | None:
    """SNtial's timestamp form: ISO 8601, 7 fraction digits, with offset (`2025-09-19T08:28:20.7506288+00:00`)."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # an identifier, not a secret


def new_item(
    *,
    contact_id: str,
    queue: WaitQueueSettings,
    times: QueueTimes,
    now: datetime,
    estimate: int,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """A new waiting contact's item; `fields`: externalId, callingNumber, calledNumber, additional,
    priority and skills, as validated."""
    return {
        "id": contact_id,
        "state": "waiting",
        "createdAt": sntial_time(now),
        "externalId": fields["externalId"],
        "callingNumber": fields["callingNumber"],
        "calledNumber": fields["calledNumber"],
        "additional": fields["additional"],
        "priority": fields["priority"],
        "routingObjectId": None,
        "routingObject": None,
        "willBeRoutedAt": sntial_time(now + timedelta(seconds=estimate)),
        "routedAt": None,
        "waitingSince": sntial_time(now),
        "removedAt": None,
        "willElapseAt": None,
        "estimatedWaitingTime": estimate,
        "estimatedWaitingTimeMinutes": math.ceil(estimate / 60),
        "settings": times.model_dump(),
        "skills": fields["skills"],
        "queue": queue.name,
        "queueId": _sha1(queue.name),
        "queueSkillsId": _sha1(",".join([queue.name, *queue.skills])),
        "queueSkills": ",".join([queue.name, *queue.skills]),
    }


def callback_data(row: WaitRow) -> dict[str, Any]:
    """The fields of the callback record a routed contact gets in its queue's campaign."""
    item = row.item
    additional = item["additional"] or {}
    return {
        "Name": additional.get("Nachname") or additional.get("Name") or item["externalId"],
        "FirstName": additional.get("Vorname") or additional.get("FirstName"),
        "PhoneNumber1": item["callingNumber"],
        "UserData": item["externalId"],
        "Comment": f"SNtial Wait callback {row.id}",
        "_sntial": {"contactId": row.id, "calledNumber": item["calledNumber"], **additional},
    }


def routed(row: WaitRow, *, record_id: int, routing_id: str, now: datetime) -> WaitRow:
    """The contact routed: its routingObject, the callback record's handle, and when it elapses."""
    done = copy.deepcopy(row)
    item = done.item
    additional = item["additional"] or {}
    maximum = int(item["settings"]["maximumWaitingTime"])
    item["routingObjectId"] = routing_id
    item["routingObject"] = {
        "state": RO_WAITING,
        "url": None,
        "id": routing_id,
        "type": "CCOBJECTIN",
        "from": item["callingNumber"],
        "to": item["calledNumber"],
        "queue": row.queue,
        "priority": item["priority"],
        "properties": [{"name": k, "value": v, "hidden": False, "url": None} for k, v in additional.items()],
        "skills": item["skills"],
        "createdAt": sntial_time(now),
        "waitingSince": item["waitingSince"],
        "connectedAt": None,
        "handledAt": None,
        "disconnectedAt": None,
        "recordHandle": record_id,
    }
    done.state = item["state"] = "routed"
    done.routed_at = now
    done.will_elapse_at = now + timedelta(seconds=maximum)
    done.record_id = record_id
    item["routedAt"] = sntial_time(now)
    item["willElapseAt"] = sntial_time(done.will_elapse_at)
    return done


def connected(row: WaitRow, *, agent: str, now: datetime) -> WaitRow:
    """An agent took the callback record."""
    done = copy.deepcopy(row)
    done.state = done.item["state"] = "connected"
    routing = done.item["routingObject"]
    routing["state"] = RO_CONNECTED
    routing["connectedAt"] = sntial_time(now)
    routing["agent"] = agent
    return done


def handled(row: WaitRow, *, now: datetime) -> WaitRow:
    """The agent completed the callback."""
    done = copy.deepcopy(row)
    done.state = done.item["state"] = "handled"
    routing = done.item["routingObject"]
    routing["state"] = RO_HANDLED
    routing["handledAt"] = routing["disconnectedAt"] = sntial_time(now)
    return done


def withdrawn(row: WaitRow, *, state: str, now: datetime) -> WaitRow:
    """Removed or elapsed: out of the waiting field, readable with removedAt."""
    done = copy.deepcopy(row)
    done.state = done.item["state"] = state
    done.removed_at = now
    done.item["removedAt"] = sntial_time(now)
    routing = done.item.get("routingObject")
    if routing is not None:
        routing["state"] = RO_WITHDRAWN
        routing["disconnectedAt"] = routing["disconnectedAt"] or sntial_time(now)
    return done
