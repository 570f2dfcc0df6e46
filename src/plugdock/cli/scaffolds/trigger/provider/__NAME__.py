"""Checks each webhook request and names the events it starts."""

from __future__ import annotations

import hmac

from werkzeug import Request, Response

from plugdock.sdk import EventDispatch, Subscription, Trigger, TriggerDispatchError, TriggerValidationError


class __CLASS__Trigger(Trigger):
    def _dispatch_event(self, subscription: Subscription, request: Request) -> EventDispatch:
        secret = subscription.properties.get("webhook_secret")
        if secret and not hmac.compare_digest(str(secret), request.headers.get("X-Webhook-Secret", "")):
            raise TriggerValidationError("Invalid or missing X-Webhook-Secret")
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise TriggerDispatchError("The body must be a JSON object")
        return EventDispatch(events=["__NAME__"], payload=payload,
                             response=Response('{"ok": true}', status=200, mimetype="application/json"))
