"""The Bayeux error strings the gateway sends, in one table (as the CometD reference server words them)."""

from __future__ import annotations

from typing import Final

# code::message, or code:args:message; clients match on the leading code.
CHANNEL_MISSING: Final = "400::channel_missing"
MESSAGE_INVALID: Final = "400::message_invalid"
DATA_MISSING: Final = "400::data_missing"
# Input the gateway could not write back (gateway/wire/limits.py), refused before it is handled.
NESTING_TOO_DEEP: Final = "400::nesting_too_deep"
INTEGER_OUT_OF_RANGE: Final = "400::integer_out_of_range"
SESSION_UNKNOWN: Final = "402::session_unknown"
HANDSHAKE_DENIED: Final = "403::handshake_denied"
VERSION_INVALID: Final = "403::version_invalid"
CONNECTION_TYPE_INVALID: Final = "403::connection_type_invalid"
SUBSCRIPTION_MISSING: Final = "403::subscription_missing"
SUBSCRIPTION_INVALID: Final = "403::subscription_invalid"
SUBSCRIBE_DENIED: Final = "403:denied_by_security_policy:subscribe_denied"
SUBSCRIBE_META_DENIED: Final = "403:denied_by_security_policy:create_denied"
UNSUBSCRIBE_FAILED: Final = "403::unsubscribe_failed"
PUBLISH_DENIED: Final = "403:denied_by_security_policy:publish_denied"
META_PUBLISH_DENIED: Final = "403:denied_by_security_policy:channel_create_denied"
CHANNEL_INVALID: Final = "405::channel_invalid"
MESSAGE_ID_INVALID: Final = "405::message_id_invalid"
MULTIPLE_CLIENTS: Final = "409::multiple_clients"
MESSAGE_DELETED: Final = "404::message_deleted"
SERVER_ERROR: Final = "500::server_error"
