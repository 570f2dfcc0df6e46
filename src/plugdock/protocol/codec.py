"""JSON-lines framing: compact UTF-8 JSON, one object per line, and a hard line-length limit."""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_LINE = 5 * 1024 * 1024  # PLUGIN_RUNTIME_MAX_BUFFER_SIZE in the official daemon


class LineTooLong(ValueError):
    """A line exceeded the negotiated limit; the message names the limit."""


def encode(obj: Any) -> bytes:
    """One wire line. The official SDK ends each object with a blank line; readers skip blank lines."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_default).encode() + b"\n\n"


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):  # dates and times (YAML may carry them)
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    if hasattr(value, "as_tuple"):  # Decimal: pydantic writes it as a string, so do we
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def decode_line(line: bytes | str) -> dict[str, Any]:
    """Parse one line into an object; raises ``ValueError`` with a short reason otherwise."""
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        preview = line[:60] if isinstance(line, str) else line[:60].decode("utf-8", errors="replace")
        raise ValueError(f"not JSON ({exc}): {preview!r}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj
