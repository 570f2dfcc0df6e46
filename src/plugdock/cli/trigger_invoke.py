"""``plugdock invoke DIR trigger ACTION``: the request for one trigger action, its values read by type.

ACTION is the daemon's route name: ``dispatch_event``, ``invoke_event`` (``EVENT/invoke_event`` when the provider
has several events), ``validate_credentials``, ``subscribe``, ``unsubscribe``, ``refresh``. ``-p`` takes
``properties.NAME=VALUE`` for the subscription (read by ``subscription_schema``), ``header.NAME=VALUE`` for the
webhook request, ``endpoint=URL``, and plain ``NAME=VALUE`` for the event's or the subscription constructor's
parameters; ``-c`` the constructor's credentials. The webhook body is read from stdin when it is not a
terminal (a whole HTTP request when it starts with a request line); ``invoke_event`` gets the body's JSON
object as its payload, as a dispatch that passes the body through would hand it on.
"""

from __future__ import annotations

import binascii
import json
import re
import sys
from typing import Any, BinaryIO

from plugdock.errors import PlugdockError
from plugdock.testing.parameters import declared_fields, only_provider, read_values

ACTIONS = {"dispatch_event": "dispatch_trigger_event", "invoke_event": "invoke_trigger_event",
           "validate_credentials": "validate_trigger_credentials", "subscribe": "subscribe_trigger",
           "unsubscribe": "unsubscribe_trigger", "refresh": "refresh_trigger"}
ENDPOINT = "http://localhost/triggers/plugdock-invoke"
REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/1\.[01]\r?\n")


def _split(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str], str]:
    properties, headers, plain, endpoint = {}, {}, {}, ENDPOINT
    for key, value in params.items():
        if key.startswith("properties."):
            properties[key.removeprefix("properties.")] = value
        elif key.startswith("header."):
            headers[key.removeprefix("header.")] = value
        elif key == "endpoint":
            endpoint = value
        else:
            plain[key] = value
    return properties, headers, plain, endpoint


def webhook_request(headers: dict[str, str], stdin: BinaryIO | None) -> tuple[str, dict[str, Any]]:
    """The hex of the webhook request and the body's JSON object (or ``{}``)."""
    from plugdock.runtime.http_wire import serialize_request

    body = stdin.read() if stdin is not None else b""
    if REQUEST_LINE.match(body):
        raw, payload_body = body, body.partition(b"\r\n\r\n")[2] or body.partition(b"\n\n")[2]
    else:
        raw = serialize_request("POST", "/", {"Host": "localhost", "Content-Type": "application/json",
                                              **headers}, body)
        payload_body = body
    try:
        payload = json.loads(payload_body or b"{}")
    except ValueError:
        payload = {}
    return binascii.hexlify(raw).decode(), payload if isinstance(payload, dict) else {}


def trigger_request(registry: Any, name: str, provider: str | None, params: dict[str, str],
                    creds: dict[str, str], stdin: BinaryIO | None = None) -> tuple[tuple[str, str], dict[str, Any]]:
    from plugdock.runtime.trigger import load_trigger_providers

    if stdin is None and not sys.stdin.isatty():
        stdin = sys.stdin.buffer
    providers = load_trigger_providers(registry.root, registry.manifest)
    provider = provider or only_provider(providers, "trigger provider")
    entry = providers.get(provider)
    event, _, action = name.rpartition("/")
    if action not in ACTIONS:
        raise PlugdockError(f"unknown trigger action {action!r}; use one of {', '.join(ACTIONS)}")
    decl = entry.declaration if entry is not None else {}
    constructor = decl.get("subscription_constructor") or {}
    properties, headers, plain, endpoint = _split(params)
    subject = f"trigger provider {provider}"
    # the constructor's credentials schema binds its own actions; a dispatch or an event takes what it is given
    checked = entry is not None and action in ("validate_credentials", "subscribe", "unsubscribe", "refresh")
    credentials = read_values(creds, declared_fields(constructor.get("credentials_schema")) if checked else None,
                              "credential", subject, "-c")
    data: dict[str, Any] = {"provider": provider, "credentials": credentials, "credential_type": "api-key"}
    if action == "validate_credentials":
        return ("trigger", ACTIONS[action]), data
    if action == "subscribe":
        fields = declared_fields(constructor.get("parameters")) if entry else None
        data.update(endpoint=endpoint, parameters=read_values(plain, fields, "parameter", f"{subject}'s "
                                                              "subscription constructor", "-p"))
        return ("trigger", ACTIONS[action]), data
    schema = declared_fields(decl.get("subscription_schema")) if entry else None
    data["subscription"] = {"expires_at": -1, "endpoint": endpoint, "parameters": None,
                            "properties": read_values(properties, schema, "property", f"{subject}'s subscription",
                                                      "-p properties.")}
    if action in ("unsubscribe", "refresh"):
        return ("trigger", ACTIONS[action]), data
    data["raw_http_request"], payload = webhook_request(headers, stdin)
    if action == "dispatch_event":
        data.update(credentials=credentials or None, credential_type=None)
        return ("trigger", ACTIONS[action]), data
    if not event:
        if entry is None or len(entry.events) != 1:
            raise PlugdockError(f"{subject} has {len(entry.events) if entry else 0} events; name one as "
                                "EVENT/invoke_event")
        event = next(iter(entry.events))
    data.update(event=event, payload=payload, parameters=read_values(plain, _event_fields(registry, decl, event),
                                                                     "parameter", f"event {event}", "-p"))
    return ("trigger", ACTIONS[action]), data


def _event_fields(registry: Any, decl: dict[str, Any], event: str) -> Any:
    from plugdock.runtime.registry import read_yaml

    for item in decl.get("events") or []:
        event_decl = read_yaml(registry.root, item) if isinstance(item, str) else item
        if (event_decl.get("identity") or {}).get("name") == event:
            return declared_fields(event_decl.get("parameters") or [])
    return None  # the call itself names the unknown event
