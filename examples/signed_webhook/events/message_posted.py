"""Turns a posted message into the workflow's variables; messages without the keyword are ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug import Request

from plugdock.sdk import Event, EventIgnoreError, Variables


class MessagePosted(Event):
    def _on_event(self, request: Request, parameters: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
        text = str(payload.get("text", ""))
        keyword = parameters.get("keyword")
        if keyword and str(keyword).lower() not in text.lower():
            raise EventIgnoreError(f"no {keyword!r} in the message")
        channel = (self.runtime.subscription.parameters or {}).get("channel", "")
        return Variables(variables={"channel": channel, "author": str(payload.get("author", "")), "text": text})
