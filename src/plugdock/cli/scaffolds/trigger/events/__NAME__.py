"""Turns a dispatched webhook into the workflow's variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug import Request

from plugdock.sdk import Event, Variables


class __CLASS__Event(Event):
    def _on_event(self, request: Request, parameters: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
        return Variables(variables={"payload": dict(payload)})
