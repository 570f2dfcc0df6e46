"""The daemon <-> plugin wire protocol, defined once and used by the plugin runtime and the daemon.

Stdlib only: a plugin process imports this on its start-up path, so it must stay light.
"""

from plugdock.protocol.actions import ACCESS_ACTIONS, AccessType
from plugdock.protocol.codec import LineTooLong, decode_line, encode
from plugdock.protocol.messages import (
    BackwardsEvent,
    Event,
    InStreamEvent,
    InvokeType,
    SessionMessageType,
    backwards_response,
    error_session_data,
    event_line,
    request_line,
    session_line,
)

__all__ = [
    "ACCESS_ACTIONS",
    "AccessType",
    "BackwardsEvent",
    "Event",
    "InStreamEvent",
    "InvokeType",
    "LineTooLong",
    "SessionMessageType",
    "backwards_response",
    "decode_line",
    "encode",
    "error_session_data",
    "event_line",
    "request_line",
    "session_line",
]
