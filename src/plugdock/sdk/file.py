"""Files handed to a tool as parameters (a URL the host serves, plus what is known about it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DIFY_FILE_IDENTITY = "__dify__file__"
DIFY_TOOL_SELECTOR_IDENTITY = "__dify__tool_selector__"


class FileType(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"
    CUSTOM = "custom"

    @staticmethod
    def value_of(value: str) -> FileType:
        return FileType(value)


@dataclass
class File:
    url: str
    type: FileType
    mime_type: str | None = None
    filename: str | None = None
    extension: str | None = None
    size: int | None = None
    dify_model_identity: str = DIFY_FILE_IDENTITY
    _blob: bytes | None = field(default=None, repr=False)

    @property
    def blob(self) -> bytes:
        """The file's bytes, downloaded on first use (the host must serve ``FILES_URL``)."""
        if self._blob is None:
            import httpx  # imported here: most tools never download a file

            try:
                response = httpx.get(self.url, timeout=float(os.environ.get("HTTPX_TIMEOUT", "5")))
                response.raise_for_status()
            except httpx.UnsupportedProtocol as exc:
                raise ValueError(
                    f"Invalid file URL {self.url!r}: {exc}. Set FILES_URL in the host so file URLs are absolute"
                ) from exc
            self._blob = response.content
        return self._blob

    @classmethod
    def from_wire(cls, value: dict[str, Any]) -> File:
        return cls(url=value["url"], type=FileType(value.get("type") or "custom"), mime_type=value.get("mime_type"),
                   filename=value.get("filename"), extension=value.get("extension"), size=value.get("size"))

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return {"dify_model_identity": self.dify_model_identity, "url": self.url, "mime_type": self.mime_type,
                "filename": self.filename, "extension": self.extension, "size": self.size, "type": self.type.value}
