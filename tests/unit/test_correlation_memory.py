"""What an entry of the memory registry really costs: its outcome kept at its length, not orjson's buffer."""

from __future__ import annotations

import tracemalloc

from gateway.events.correlation import MemoryCorrelationRegistry, kept_json

# A GWS acknowledgement as the registry keeps it: the answer and the notifications sent (~300 bytes of JSON).
RESULT = {"statusCode": 0}
NOTIFICATIONS = [
    {"channel": "/v2/me/outbound", "data": {"messageType": "OutboundCampaignMessage", "referenceId": "r" * 20}},
    {"channel": "/me/internal", "data": {"messageType": "DeviceUserEventMessage", "userData": {"k": "v" * 100}}},
]
ENTRIES = 500


def test_kept_json_is_the_json_and_allocates_its_length() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [kept_json(RESULT) for _ in range(100)]
        per_copy = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert kept[0] == b'{"statusCode":0}'
    # bytes header (33) + 16 + list slot: far below orjson's 4 KiB output buffer.
    assert per_copy < 200


async def test_an_entry_costs_about_its_estimated_size() -> None:
    registry = MemoryCorrelationRegistry(max_entries=ENTRIES * 2, ttl_s=3600.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(ENTRIES):
            _, entry = await registry.begin("agent17", f"h17-{i}-5f3a9c01", "StartPreviewSession", "f" * 64)
            await registry.complete(entry, 200, RESULT, NOTIFICATIONS)
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / ENTRIES
    finally:
        tracemalloc.stop()
    estimated = registry.bytes_used() / ENTRIES
    # The estimate counts the strings and the serialized outcome; the objects holding them (the entry, its
    # key, the ordered dict's slot and node, string headers) add a few hundred bytes. orjson's buffers kept
    # as they came made it ~8 KiB more.
    assert per_entry < estimated + 1000, (per_entry, estimated)
