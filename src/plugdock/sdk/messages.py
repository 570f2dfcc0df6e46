"""Messages a tool or agent strategy yields: text, JSON, links, images, blobs, variables, logs, retriever hits.

Same names, fields and wire shape as the official SDK's ``InvokeMessage``, but plain classes rather
than pydantic models, so a tool plugin starts without importing pydantic.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any


class LogMetadata(StrEnum):
    STARTED_AT = "started_at"
    FINISHED_AT = "finished_at"
    ELAPSED_TIME = "elapsed_time"
    TOTAL_PRICE = "total_price"
    TOTAL_TOKENS = "total_tokens"
    PROVIDER = "provider"
    CURRENCY = "currency"


class _Payload:
    """Shared behaviour of message payloads: a dict view in wire form, and pydantic-style ``model_dump``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self.to_dict()


class InvokeMessage:
    @dataclass
    class TextMessage(_Payload):
        text: str

    @dataclass
    class JsonMessage(_Payload):
        json_object: Mapping[str, Any] | list[Any]

        def to_dict(self) -> dict[str, Any]:
            return {"json_object": self.json_object}

    @dataclass
    class BlobMessage(_Payload):
        blob: bytes

        def to_dict(self) -> dict[str, Any]:
            return {"blob": base64.b64encode(self.blob).decode()}

    @dataclass
    class BlobChunkMessage(_Payload):
        id: str
        sequence: int
        total_length: int
        blob: bytes
        end: bool

        def to_dict(self) -> dict[str, Any]:
            return {"id": self.id, "sequence": self.sequence, "total_length": self.total_length,
                    "blob": base64.b64encode(self.blob).decode(), "end": self.end}

    @dataclass
    class VariableMessage(_Payload):
        variable_name: str
        variable_value: Any
        stream: bool = False

        def __post_init__(self) -> None:
            if self.stream and not isinstance(self.variable_value, str):
                raise ValueError("When 'stream' is True, 'variable_value' must be a string.")

    @dataclass
    class LogMessage(_Payload):
        class LogStatus(Enum):
            START = "start"
            ERROR = "error"
            SUCCESS = "success"

        label: str
        status: InvokeMessage.LogMessage.LogStatus
        data: Mapping[str, Any]
        id: str = field(default_factory=lambda: str(uuid.uuid4()))
        parent_id: str | None = None
        error: str | None = None
        metadata: Mapping[Any, Any] | None = None

        def to_dict(self) -> dict[str, Any]:
            status = self.status.value if isinstance(self.status, Enum) else str(self.status)
            metadata = None if self.metadata is None else {
                (k.value if isinstance(k, Enum) else k): v for k, v in self.metadata.items()
            }
            return {"id": self.id, "label": self.label, "parent_id": self.parent_id, "error": self.error,
                    "status": status, "data": dict(self.data), "metadata": metadata}

    @dataclass
    class RetrieverResourceMessage(_Payload):
        @dataclass
        class RetrieverResource(_Payload):
            position: int | None = None
            dataset_id: str | None = None
            dataset_name: str | None = None
            document_id: str | None = None
            document_name: str | None = None
            data_source_type: str | None = None
            segment_id: str | None = None
            retriever_from: str | None = None
            score: float | None = None
            hit_count: int | None = None
            word_count: int | None = None
            segment_position: int | None = None
            index_node_hash: str | None = None
            content: str | None = None
            page: int | None = None
            doc_metadata: dict[str, Any] | None = None

        retriever_resources: list[InvokeMessage.RetrieverResourceMessage.RetrieverResource]
        context: str

        def to_dict(self) -> dict[str, Any]:
            return {"retriever_resources": [r.to_dict() if isinstance(r, _Payload) else dict(r)
                                            for r in self.retriever_resources], "context": self.context}

    class MessageType(Enum):
        TEXT = "text"
        FILE = "file"
        BLOB = "blob"
        JSON = "json"
        LINK = "link"
        IMAGE = "image"
        IMAGE_LINK = "image_link"
        VARIABLE = "variable"
        BLOB_CHUNK = "blob_chunk"
        LOG = "log"
        RETRIEVER_RESOURCES = "retriever_resources"

    __slots__ = ("message", "meta", "type")

    def __init__(self, *, type: InvokeMessage.MessageType | str, message: Any = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.type = type if isinstance(type, InvokeMessage.MessageType) else InvokeMessage.MessageType(type)
        self.message = message
        self.meta = meta

    def to_wire(self) -> dict[str, Any]:
        """The message as the daemon expects it inside a ``stream`` session message."""
        payload = self.message.to_dict() if isinstance(self.message, _Payload) else self.message
        return {"type": self.type.value, "message": payload, "meta": self.meta}

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self.to_wire()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type.value!r}, message={self.message!r}, meta={self.meta!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InvokeMessage) and self.to_wire() == other.to_wire()

    __hash__ = None  # type: ignore[assignment]


class ToolInvokeMessage(InvokeMessage):
    """What a tool yields."""

    __slots__ = ()


class AgentInvokeMessage(InvokeMessage):
    """What an agent strategy yields."""

    __slots__ = ()
