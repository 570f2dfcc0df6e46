"""Remote-debugging registration messages (plugin -> daemon over TCP, before the normal protocol starts)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from plugdock.protocol.codec import encode

ASSET_CHUNK_SIZE = 8192


class InitializeType(StrEnum):
    HANDSHAKE = "handshake"
    ASSET_CHUNK = "asset_chunk"
    MANIFEST_DECLARATION = "manifest_declaration"
    TOOL_DECLARATION = "tool_declaration"
    MODEL_DECLARATION = "model_declaration"
    ENDPOINT_DECLARATION = "endpoint_declaration"
    AGENT_STRATEGY_DECLARATION = "agent_strategy_declaration"
    DATASOURCE_DECLARATION = "datasource_declaration"
    TRIGGER_DECLARATION = "trigger_declaration"
    END = "end"


def init_line(kind: InitializeType, data: Any) -> bytes:
    return encode({"type": kind.value, "data": data})


def asset_lines(filename: str, content: bytes) -> Iterator[bytes]:
    """An asset as base64 chunks of at most 8192 raw bytes; the last one says ``end``."""
    chunks = [content[i : i + ASSET_CHUNK_SIZE] for i in range(0, len(content), ASSET_CHUNK_SIZE)] or [b""]
    for index, chunk in enumerate(chunks):
        yield init_line(InitializeType.ASSET_CHUNK, {
            "filename": filename, "data": base64.b64encode(chunk).decode(), "end": index == len(chunks) - 1,
        })
