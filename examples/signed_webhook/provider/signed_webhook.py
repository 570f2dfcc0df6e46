"""Checks each webhook's signature and names the event it starts; creates subscriptions for the user."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from werkzeug import Request, Response

from plugdock.sdk import (
    EventDispatch,
    I18nObject,
    ParameterOption,
    Subscription,
    Trigger,
    TriggerDispatchError,
    TriggerOAuthCredentials,
    TriggerProviderCredentialValidationError,
    TriggerSubscriptionConstructor,
    TriggerValidationError,
    UnsubscribeResult,
)

EVENTS = {"message.posted": "message_posted"}


class SignedWebhookTrigger(Trigger):
    def _dispatch_event(self, subscription: Subscription, request: Request) -> EventDispatch:
        secret = subscription.properties.get("webhook_secret")
        if secret:
            expected = "sha256=" + hmac.new(str(secret).encode(), request.get_data(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, request.headers.get("X-Signature-256", "")):
                raise TriggerValidationError("Invalid or missing X-Signature-256")
        try:
            payload = json.loads(request.get_data() or b"null")
        except ValueError as exc:
            raise TriggerDispatchError(f"The body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise TriggerDispatchError("The body must be a JSON object")
        kind = request.headers.get("X-Event-Type", "")
        if kind == "ping":
            return EventDispatch(events=[], response=Response("pong", status=200))
        if kind not in EVENTS:
            raise TriggerDispatchError(f"Unknown X-Event-Type {kind!r}")
        return EventDispatch(user_id=str(payload.get("author", "")), events=[EVENTS[kind]], payload=payload,
                             response=Response('{"ok": true}', status=200, mimetype="application/json"))


class SignedWebhookConstructor(TriggerSubscriptionConstructor):
    """A pretend service: no network, so the example runs anywhere; a real one calls the service's API here."""

    def _validate_api_key(self, credentials: Mapping[str, Any]) -> None:
        if not str(credentials.get("api_key", "")).startswith("sk-"):
            raise TriggerProviderCredentialValidationError("API keys start with sk-")

    def _oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        client_id = system_credentials["client_id"]
        return f"https://auth.example.com/authorize?client_id={client_id}&redirect_uri={redirect_uri}"

    def _oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                               request: Request) -> TriggerOAuthCredentials:
        code = request.args.get("code")
        if not code:
            raise ValueError("the callback carries no code")
        return TriggerOAuthCredentials(credentials={"access_token": f"token-{code}"}, expires_at=-1)

    def _create_subscription(self, endpoint: str, parameters: Mapping[str, Any], credentials: Mapping[str, Any],
                             credential_type: Any) -> Subscription:
        channel = parameters.get("channel")
        if not channel:
            raise ValueError("the channel parameter is required")
        secret = hashlib.sha256(f"{endpoint}|{channel}".encode()).hexdigest()[:32]
        return Subscription(expires_at=-1, endpoint=endpoint, parameters=dict(parameters),
                            properties={"webhook_secret": secret, "external_id": f"hook-{channel}"})

    def _delete_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                             credential_type: Any) -> UnsubscribeResult:
        external_id = subscription.properties.get("external_id")
        if not external_id:
            return UnsubscribeResult(success=False, message="the subscription has no external_id")
        return UnsubscribeResult(success=True, message=f"removed {external_id}")

    def _refresh_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                              credential_type: Any) -> Subscription:
        return Subscription(expires_at=-1, endpoint=subscription.endpoint, parameters=subscription.parameters,
                            properties=subscription.properties)

    def _fetch_parameter_options(self, parameter: str, credentials: Mapping[str, Any],
                                 credential_type: Any) -> list[ParameterOption]:
        if parameter != "channel":
            raise ValueError(f"no options for {parameter!r}")
        return [ParameterOption(value=name, label=I18nObject(en_US=f"#{name}")) for name in ("general", "random")]
