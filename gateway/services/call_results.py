"""OCS call results (gws-outbound.md §8.3): names and numeric codes, and the result code each records."""

from __future__ import annotations

import re
from typing import Final

from gateway.services.errors import InvalidInput

CALL_RESULTS: Final[dict[int, str]] = {
    0: "Ok",
    1: "Transferred",
    2: "Conferenced",
    3: "General Error",
    4: "System Error",
    5: "RemoteRelease",
    6: "Busy",
    7: "No Answer",
    8: "SIT Detected",
    9: "Answering Machine Detected",
    10: "All Trunks Busy",
    11: "SIT Invalid Num",
    12: "SIT VC",
    13: "SIT IC",
    14: "SIT Unknown Call State",
    15: "SIT NC",
    16: "SIT RO",
    17: "Fax Detected",
    18: "Queue Full",
    19: "Cleared",
    20: "Overflowed",
    21: "Abandoned",
    22: "Redirected",
    23: "Forwarded",
    24: "Consult",
    25: "PickedUp",
    26: "Dropped",
    27: "Dropped on No Answer",
    28: "Unknown Call Result",
    29: "Covered",
    30: "Converse-On",
    31: "Bridged",
    32: "Silence",
    33: "Answer",
    34: "NU Tone",
    35: "No Dial Tone",
    36: "No Progress",
    37: "No Ring Back Tone",
    38: "No Established Detected",
    39: "Pager Detected",
    40: "Wrong Party",
    41: "Dial Error",
    42: "Call Drop Error",
    43: "Switch Error",
    44: "No Port Available",
    45: "Transfer Error",
    46: "Stale",
    47: "Agent CallBack Error",
    48: "Group Call Back Error",
    49: "Deafened",
    50: "Held",
    51: "Do Not Call",
    52: "Cancel Record",
    53: "Wrong Number",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Accepted spellings: the table's names in any case, with or without spaces, dashes or underscores
# ("No Answer", "NoAnswer", "no_answer"), and OCS's enum style with a prefix ("CallResultNoAnswer").
_BY_KEY: Final = {_key(name): code for code, name in CALL_RESULTS.items()}

# The dialler result code (services/result_codes.py) a completed call result records.
RESULT_CODE_OF: Final[dict[int, int]] = {0: 1, 33: 1, 6: 8, 7: 7, 27: 7, 9: 9, 51: 4, 53: 10, 40: 10, 11: 10}
DEFAULT_RESULT_CODE: Final = 1  # Success (Done): the agent completed the record


def parse_call_result(value: object) -> int:
    """The OCS call-result code for a name or number (as an int or a digit string)."""
    if isinstance(value, bool):
        raise InvalidInput("callResult must be an OCS call result name or code")
    if isinstance(value, int):
        code = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        code = int(value.strip())  # ASCII digits only: "²".isdigit() holds but int() refuses it
    elif isinstance(value, str):
        key = _key(value)
        found = _BY_KEY.get(key) if key else None
        if found is None and key.startswith("callresult"):
            found = _BY_KEY.get(key.removeprefix("callresult"))
        if found is None:
            raise InvalidInput(f"callResult {value!r} is not an OCS call result")
        return found
    else:
        raise InvalidInput("callResult must be an OCS call result name or code")
    if code not in CALL_RESULTS:
        raise InvalidInput(f"callResult {code} is not an OCS call result code (0 to 53)")
    return code
