"""Small shared entities of the author API: i18n text and parameter options (plain classes, no pydantic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class I18nObject:
    """Text in several languages; missing languages fall back to ``en_US``, as in the official SDK."""

    en_US: str
    zh_Hans: str | None = None
    pt_BR: str | None = None
    ja_JP: str | None = None

    def __post_init__(self) -> None:
        self.zh_Hans = self.zh_Hans or self.en_US
        self.pt_BR = self.pt_BR or self.en_US
        self.ja_JP = self.ja_JP or self.en_US

    def to_dict(self) -> dict[str, Any]:
        return {"zh_Hans": self.zh_Hans, "pt_BR": self.pt_BR, "ja_JP": self.ja_JP, "en_US": self.en_US}

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self.to_dict()


@dataclass
class ParameterOption:
    """One choice of a (dynamic) select parameter."""

    value: str
    label: I18nObject
    icon: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label.to_dict(), "icon": self.icon}

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self.to_dict()
