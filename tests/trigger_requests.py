"""Requests for the signed_webhook example, shared by the stdio, conformance and daemon tests."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
from typing import Any

from plugdock.runtime.http_wire import serialize_request

SECRET = "s3cret"
SUBSCRIPTION = {"expires_at": -1, "endpoint": "https://dify.example/triggers/abc",
                "parameters": {"channel": "general"}, "properties": {"webhook_secret": SECRET, "external_id": "hook-1"}}
PROVIDER = "signed_webhook"


def webhook(body: Any, event: str = "message.posted", secret: str | None = SECRET) -> str:
    """A webhook POST as the hex of its HTTP/1.1 bytes, signed with ``secret``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Host": "dify.example", "Content-Type": "application/json", "X-Event-Type": event}
    if secret is not None:
        headers["X-Signature-256"] = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    return binascii.hexlify(serialize_request("POST", "/triggers/abc", headers, data)).decode()


MESSAGE = {"author": "ann", "text": "Deploy is done"}


def requests(provider: str = PROVIDER) -> list[dict[str, Any]]:
    base = {"type": "trigger", "provider": provider}
    dispatch = {**base, "action": "dispatch_trigger_event", "subscription": SUBSCRIPTION, "credentials": None,
                "credential_type": None}
    invoke = {**base, "action": "invoke_trigger_event", "event": "message_posted", "credentials": {},
              "credential_type": "api-key", "subscription": SUBSCRIPTION, "raw_http_request": webhook(MESSAGE),
              "payload": MESSAGE}
    constructor = {**base, "credentials": {"api_key": "sk-1"}, "credential_type": "api-key"}
    return [
        {**dispatch, "raw_http_request": webhook(MESSAGE)},
        {**dispatch, "raw_http_request": webhook(MESSAGE, secret="wrong")},
        {**dispatch, "raw_http_request": webhook({}, event="ping")},
        {**dispatch, "raw_http_request": webhook(b"not json")},
        {**dispatch, "raw_http_request": webhook(MESSAGE, event="message.deleted")},
        {**invoke, "parameters": {"keyword": "deploy"}},
        {**invoke, "parameters": {"keyword": "rollback"}},
        {**invoke, "event": "missing", "parameters": {}},
        {**base, "action": "validate_trigger_credentials", "credentials": {"api_key": "sk-good"}},
        {**base, "action": "validate_trigger_credentials", "credentials": {"api_key": "bad"}},
        {**constructor, "action": "subscribe_trigger", "endpoint": "https://dify.example/triggers/new",
         "parameters": {"channel": "random"}},
        {**constructor, "action": "subscribe_trigger", "endpoint": "https://dify.example/triggers/new",
         "parameters": {}},
        {**constructor, "action": "unsubscribe_trigger", "subscription": SUBSCRIPTION},
        {**constructor, "action": "unsubscribe_trigger", "subscription": {**SUBSCRIPTION, "properties": {}}},
        {**constructor, "action": "refresh_trigger", "subscription": SUBSCRIPTION},
        {"type": "dynamic_parameter", "action": "fetch_parameter_options", "provider": provider,
         "provider_action": "provider", "parameter": "channel", "credentials": {"api_key": "sk-1"},
         "credential_type": "api-key"},
        {"type": "oauth", "action": "get_authorization_url", "provider": provider,
         "redirect_uri": "https://dify.example/cb", "system_credentials": {"client_id": "cid"}},
        {"type": "oauth", "action": "get_credentials", "provider": provider, "redirect_uri": "https://dify.example/cb",
         "system_credentials": {"client_id": "cid"},
         "raw_http_request": binascii.hexlify(serialize_request("GET", "/cb?code=xyz", {"Host": "dify.example"},
                                                                b"")).decode()},
        {**dispatch, "provider": "nope", "raw_http_request": webhook(MESSAGE)},
        {"type": "dynamic_parameter", "action": "fetch_parameter_options", "provider": provider,
         "provider_action": "message_posted", "parameter": "keyword", "credentials": {}},
        {"type": "oauth", "action": "refresh_credentials", "provider": provider,
         "redirect_uri": "https://dify.example/cb", "system_credentials": {}, "credentials": {"access_token": "t"}},
        {**constructor, "action": "subscribe_trigger", "provider": "nope", "endpoint": "https://dify.example/x",
         "parameters": {}},
    ]
