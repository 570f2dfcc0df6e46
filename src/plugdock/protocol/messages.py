"""Message shapes on the wire, as the official SDK and daemon exchange them.

Plugin -> daemon: ``{"event": E, "session_id": S|null, "data": D}`` with E in ``Event``; a ``session``
event's data is ``{"type": T, "data": ...}`` with T in ``SessionMessageType``.
Daemon -> plugin: ``{"session_id", "conversation_id", "message_id", "app_id", "endpoint_id", "context",
"event", "data"}`` with event ``request`` or ``backwards_response``.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from plugdock.protocol.codec import encode


class Event(StrEnum):
    LOG = "log"
    ERROR = "error"
    SESSION = "session"
    HEARTBEAT = "heartbeat"


class SessionMessageType(StrEnum):
    STREAM = "stream"
    INVOKE = "invoke"
    END = "end"
    ERROR = "error"


class InStreamEvent(StrEnum):
    REQUEST = "request"
    BACKWARDS_RESPONSE = "backwards_response"


class BackwardsEvent(StrEnum):
    RESPONSE = "response"
    ERROR = "error"
    END = "end"


class InvokeType(StrEnum):
    """Reverse ("backwards") invocation kinds a plugin may ask of its host."""

    TOOL = "tool"
    LLM = "llm"
    LLM_STRUCTURED_OUTPUT = "llm_structured_output"
    TEXT_EMBEDDING = "text_embedding"
    MULTIMODAL_EMBEDDING = "multimodal_embedding"
    RERANK = "rerank"
    MULTIMODAL_RERANK = "multimodal_rerank"
    TTS = "tts"
    SPEECH2TEXT = "speech2text"
    MODERATION = "moderation"
    NODE_PARAMETER_EXTRACTOR = "node_parameter_extractor"
    NODE_QUESTION_CLASSIFIER = "node_question_classifier"
    APP = "app"
    STORAGE = "storage"
    UPLOAD_FILE = "upload_file"
    SYSTEM_SUMMARY = "system_summary"
    FETCH_APP = "fetch_app"


STREAMED_INVOKE_TYPES = frozenset({InvokeType.TOOL, InvokeType.LLM, InvokeType.LLM_STRUCTURED_OUTPUT,
                                   InvokeType.TTS, InvokeType.APP})


def event_line(event: Event, session_id: str | None, data: Any) -> bytes:
    return encode({"event": event.value, "session_id": session_id, "data": data})


def session_line(session_id: str, kind: SessionMessageType, data: Any) -> bytes:
    return event_line(Event.SESSION, session_id, {"type": kind.value, "data": data})


def log_line(level: str, message: str) -> bytes:
    return event_line(Event.LOG, None, {"level": level, "message": message, "timestamp": time.time()})


def error_session_data(error_type: str, message: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of a session ``error`` message; the host maps ``error_type`` onto its own exceptions."""
    return {"error_type": error_type, "message": message, "args": args or {}}


def request_line(
    session_id: str,
    data: dict[str, Any],
    *,
    event: InStreamEvent = InStreamEvent.REQUEST,
    conversation_id: str | None = None,
    message_id: str | None = None,
    app_id: str | None = None,
    endpoint_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> bytes:
    """A daemon -> plugin line; the optional keys are always present, as the official daemon writes them."""
    return encode({
        "session_id": session_id, "conversation_id": conversation_id, "message_id": message_id,
        "app_id": app_id, "endpoint_id": endpoint_id, "context": context, "event": event.value, "data": data,
    })


def backwards_response(request_id: str, event: BackwardsEvent, message: str = "", data: Any = None) -> dict[str, Any]:
    """The data of a ``backwards_response`` line answering reverse invocation ``request_id``."""
    return {"backwards_request_id": request_id, "event": event.value, "message": message, "data": data}
