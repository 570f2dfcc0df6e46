"""Endpoints: an extension plugin's HTTP handlers (a werkzeug ``Request`` in, a ``Response`` out)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from werkzeug import Request, Response

    from plugdock.sdk.session import Session


class Endpoint(ABC):
    """Implement ``_invoke``; return a ``Response`` (its body may be a generator to stream)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @abstractmethod
    def _invoke(self, r: Request, values: Mapping[str, Any], settings: Mapping[str, Any]) -> Response:
        """Handle one request; ``values`` are the path variables, ``settings`` the endpoint's settings."""

    def invoke(self, r: Request, values: Mapping[str, Any], settings: Mapping[str, Any]) -> Response:
        return self._invoke(r, values, settings)
