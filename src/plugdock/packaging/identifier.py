"""Plugin unique identifiers: ``author/name:version@checksum``, parsed as the official daemon parses them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from plugdock.errors import PlugdockError

IDENTIFIER_RE = re.compile(
    r"^(?:([a-z0-9_-]{1,64})/)?([a-z0-9_-]{1,255}):([0-9]{1,4}(?:\.[0-9]{1,4}){1,3}(?:-\w{1,16})?)@([a-f0-9]{32,64})$"
)


class InvalidIdentifier(PlugdockError):
    code = "PluginUniqueIdentifierError"


@dataclass(frozen=True)
class PluginIdentifier:
    author: str
    name: str
    version: str
    checksum: str

    @property
    def plugin_id(self) -> str:
        return f"{self.author}/{self.name}" if self.author else self.name

    def __str__(self) -> str:
        return f"{self.plugin_id}:{self.version}@{self.checksum}"

    @classmethod
    def parse(cls, text: str) -> PluginIdentifier:
        match = IDENTIFIER_RE.match(text)
        if not match:
            raise InvalidIdentifier(
                f"{text!r} is not a plugin unique identifier (expected author/name:1.2.3@<32-64 hex checksum>)"
            )
        author, name, version, checksum = match.groups()
        return cls(author or "", name, version, checksum)
