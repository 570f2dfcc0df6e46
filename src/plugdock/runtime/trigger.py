"""Trigger actions: the official request model's six ``trigger`` actions, and OAuth and dynamic parameters for
trigger providers.

Answers are what the official ``PluginExecutor`` returns, one chunk each: ``{"variables", "cancelled"}`` for an
event (``EventIgnoreError`` is a cancelled event, not an error), ``{"user_id", "events", "response",
"payload"}`` for a dispatch with the HTTP response as the hex of its HTTP/1.1 bytes, ``{"subscription": ...}``
for subscribe, unsubscribe and refresh. Classes load when the executor starts, so a missing one stops the
plugin at start-up with the file named.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.runtime.actions import (
    Handler,
    NotFoundError,
    RequestDataError,
    for_providers,
    need,
    oauth_credentials_answer,
    oauth_refreshed_answer,
    raw_http_request,
)
from plugdock.runtime.registry import PluginRegistry, RegistryError, load_class, read_yaml
from plugdock.sdk.session import Session

CREDENTIAL_TYPES = ("api-key", "oauth2", "unauthorized")


@dataclass
class TriggerProviderEntry:
    name: str
    declaration: dict[str, Any]
    provider_cls: type
    constructor_cls: type | None
    events: dict[str, type] = field(default_factory=dict)

    @property
    def supports_oauth(self) -> bool:
        return bool((self.declaration.get("subscription_constructor") or {}).get("oauth_schema"))


def _source(decl: Any, what: str) -> str:
    try:
        return str(decl["extra"]["python"]["source"])
    except (KeyError, TypeError):
        raise RegistryError(f"{what} has no extra.python.source (the official SDK needs it too)") from None


def load_trigger_providers(root: Path, manifest: Mapping[str, Any]) -> dict[str, TriggerProviderEntry]:
    """Every trigger provider ``manifest.plugins.triggers`` names, as the official SDK resolves them: one
    ``Trigger`` and at most one ``TriggerSubscriptionConstructor`` in the provider's source, one ``Event``
    subclass per event file."""
    paths = (manifest.get("plugins") or {}).get("triggers") or []
    if not paths:
        return {}
    from plugdock.sdk.trigger import Event, Trigger, TriggerSubscriptionConstructor

    out: dict[str, TriggerProviderEntry] = {}
    for path in paths:
        decl = read_yaml(root, str(path))
        if not isinstance(decl, dict) or not isinstance(decl.get("identity"), dict):
            raise RegistryError(f"{path}: expected a trigger provider mapping with an identity")
        source = _source(decl, str(path))
        constructors = load_class(root, source, TriggerSubscriptionConstructor, many=True)
        if len(constructors) > 1:
            raise RegistryError(f"{source}: Multiple TriggerSubscriptionConstructor subclasses found in {source}. "
                                "Only a single implementation is supported.")
        if decl.get("subscription_constructor") and not constructors:
            raise RegistryError(f"{source}: Trigger subscription constructor configuration declared but no "
                                f"implementation found in {source}.")
        name = str(decl["identity"]["name"])
        entry = TriggerProviderEntry(name, decl, load_class(root, source, Trigger),
                                     constructors[0] if constructors else None)
        for item in decl.get("events") or []:
            if not isinstance(item, str):
                raise RegistryError(f"{path}: event path should be a string (the official SDK loads events only "
                                    "from files)")
            event_decl = read_yaml(root, item)
            event_name = str(event_decl["identity"]["name"])
            if event_name in entry.events:
                raise RegistryError(f"{item}: Event `{event_name}` is already registered for provider `{name}`")
            entry.events[event_name] = load_class(root, _source(event_decl, item), Event)
        out[name] = entry
    return out


def serialize_response(response: Any) -> bytes:
    """A werkzeug ``Response`` as the HTTP/1.1 bytes the official SDK's ``serialize_response`` (h11) writes:
    an empty reason phrase, the headers as set minus framing ones, then ``Content-Length``."""
    from werkzeug import Response

    if not isinstance(response, Response):
        raise TypeError(f"EventDispatch.response must be a werkzeug Response, got {type(response).__name__}")
    if not 200 <= response.status_code <= 999:
        raise ValueError(f"a dispatch response needs a final status (200-999), got {response.status_code}")
    body = response.get_data()
    lines = [f"HTTP/1.1 {response.status_code} "]
    for name, value in response.headers:
        if name.lower() in ("content-length", "transfer-encoding"):
            continue
        if any(c in name + value for c in "\r\n\x00"):
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def _subscription(data: Mapping[str, Any]) -> Any:
    from plugdock.sdk.trigger_entities import Subscription

    try:
        return Subscription.model_validate(need(data, "subscription", dict))
    except ValueError as exc:
        raise RequestDataError(str(exc)) from None


def _credential_type(data: Mapping[str, Any], default: str) -> Any:
    from plugdock.sdk.tool import CredentialType

    value = data.get("credential_type") or default
    if value not in CREDENTIAL_TYPES:
        raise RequestDataError(f"credential_type must be one of {', '.join(CREDENTIAL_TYPES)}, got {value!r}")
    return CredentialType(value)


def _expect(value: Any, cls: type, what: str) -> Any:
    if not isinstance(value, cls):
        raise TypeError(f"{what} returned {type(value).__name__}; return a {cls.__name__}")
    return value


def _options(options: Any) -> list[Any]:
    out = []
    for option in options or []:
        dump = getattr(option, "model_dump", None)
        out.append(dump(mode="json") if callable(dump) else option)
    return out


class TriggerActions:
    """The trigger handlers over the providers one plugin declares."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.providers = load_trigger_providers(registry.root, registry.manifest)

    def summary(self) -> list[str]:
        return [f"trigger provider {n}: {', '.join(e.events)}" for n, e in self.providers.items()]

    def handlers(self, previous: Mapping[tuple[str, str], Handler]) -> dict[tuple[str, str], Handler]:
        """The six trigger actions, and OAuth and dynamic parameters answering for trigger providers first
        (falling back to ``previous`` for every other provider)."""
        if not self.providers:
            return {}
        out: dict[tuple[str, str], Handler] = {
            ("trigger", "invoke_trigger_event"): self.invoke_event,
            ("trigger", "validate_trigger_credentials"): self.validate_credentials,
            ("trigger", "dispatch_trigger_event"): self.dispatch_event,
            ("trigger", "subscribe_trigger"): self.subscribe,
            ("trigger", "unsubscribe_trigger"): self.unsubscribe,
            ("trigger", "refresh_trigger"): self.refresh,
        }
        for key, method in ((("oauth", "get_authorization_url"), self.oauth_authorization_url),
                            (("oauth", "get_credentials"), self.oauth_get_credentials),
                            (("oauth", "refresh_credentials"), self.oauth_refresh_credentials),
                            (("dynamic_parameter", "fetch_parameter_options"), self.fetch_parameter_options)):
            out[key] = for_providers(self.providers, method, previous.get(key))
        return out

    # -- lookups --------------------------------------------------------------------------------
    def _entry(self, data: Mapping[str, Any]) -> TriggerProviderEntry:
        name = need(data, "provider")
        entry = self.providers.get(name)
        if entry is None:
            raise NotFoundError(f"Trigger provider `{name}` not found")
        return entry

    def _constructor(self, session: Session, data: Mapping[str, Any], credential_type: Any = None) -> Any:
        from plugdock.sdk.trigger_entities import TriggerSubscriptionConstructorRuntime

        entry = self._entry(data)
        if entry.constructor_cls is None:
            raise ValueError(f"Trigger provider `{entry.name}` does not define a subscription constructor")
        credentials = data.get("credentials")
        runtime = TriggerSubscriptionConstructorRuntime(
            session=session, credentials=dict(credentials) if isinstance(credentials, Mapping) else None,
            credential_type=credential_type or _credential_type(data, "unauthorized"))
        return entry.constructor_cls(runtime)

    def _event(self, session: Session, data: Mapping[str, Any], name: str, subscription: Any,
               default_type: str = "api-key") -> Any:
        from plugdock.sdk.trigger_entities import EventRuntime

        entry = self._entry(data)
        event_cls = entry.events.get(name)
        if event_cls is None:
            raise NotFoundError(f"Event `{name}` not found in provider `{entry.name}`")
        return event_cls(EventRuntime(session=session, credential_type=_credential_type(data, default_type),
                                      credentials=dict(data.get("credentials") or {}), subscription=subscription))

    # -- the six trigger actions ---------------------------------------------------------------
    def invoke_event(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.trigger_entities import EventIgnoreError, Variables

        event = self._event(session, data, need(data, "event"), _subscription(data))
        request = raw_http_request(data)
        try:
            result = event.on_event(request=request, parameters=dict(data.get("parameters") or {}),
                                    payload=dict(data.get("payload") or {}))
        except EventIgnoreError:
            return [{"variables": {}, "cancelled": True}]
        variables = _expect(result, Variables, f"event {type(event).__name__}._on_event").variables
        return [{"variables": dict(variables), "cancelled": False}]

    def validate_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.tool import CredentialType

        credentials = need(data, "credentials", dict)
        self._constructor(session, data, CredentialType.API_KEY).validate_api_key(credentials=credentials)
        return [{"result": True}]

    def dispatch_event(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.trigger_entities import EventDispatch, TriggerRuntime

        entry = self._entry(data)
        credentials = data.get("credentials")
        trigger = entry.provider_cls(TriggerRuntime(
            session=session, credential_type=_credential_type(data, "unauthorized"),
            credentials=dict(credentials) if isinstance(credentials, Mapping) else None))
        subscription, request = _subscription(data), raw_http_request(data)
        result = _expect(trigger.dispatch_event(subscription=subscription, request=request), EventDispatch,
                         f"trigger {type(trigger).__name__}._dispatch_event")
        return [{"user_id": result.user_id, "events": list(result.events),
                 "response": binascii.hexlify(serialize_response(result.response)).decode(),
                 "payload": dict(result.payload)}]

    def subscribe(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.trigger_entities import Subscription

        credential_type = _credential_type(data, "api-key")
        constructor = self._constructor(session, data, credential_type)
        result = constructor.create_subscription(endpoint=need(data, "endpoint"),
                                                 parameters=dict(data.get("parameters") or {}),
                                                 credentials=dict(data.get("credentials") or {}),
                                                 credential_type=credential_type)
        what = f"{type(constructor).__name__}._create_subscription"
        return [{"subscription": _expect(result, Subscription, what).model_dump()}]

    def unsubscribe(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.trigger_entities import UnsubscribeResult

        credential_type = _credential_type(data, "api-key")
        constructor = self._constructor(session, data, credential_type)
        result = constructor.delete_subscription(subscription=_subscription(data),
                                                 credentials=dict(data.get("credentials") or {}),
                                                 credential_type=credential_type)
        what = f"{type(constructor).__name__}._delete_subscription"
        return [{"subscription": _expect(result, UnsubscribeResult, what).model_dump()}]

    def refresh(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.trigger_entities import Subscription

        credential_type = _credential_type(data, "api-key")
        constructor = self._constructor(session, data, credential_type)
        result = constructor.refresh_subscription(subscription=_subscription(data),
                                                  credentials=dict(data.get("credentials") or {}),
                                                  credential_type=credential_type)
        what = f"{type(constructor).__name__}._refresh_subscription"
        return [{"subscription": _expect(result, Subscription, what).model_dump()}]

    # -- OAuth and dynamic parameters for trigger providers ------------------------------------
    def _oauth(self, session: Session, data: Mapping[str, Any]) -> Any:
        from plugdock.sdk.tool import CredentialType

        entry = self._entry(data)
        if not entry.supports_oauth or entry.constructor_cls is None:
            raise ValueError(f"Provider `{entry.name}` does not support OAuth")
        return self._constructor(session, {"provider": entry.name}, CredentialType.UNAUTHORIZED)

    def oauth_authorization_url(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        url = self._oauth(session, data).oauth_get_authorization_url(
            redirect_uri=need(data, "redirect_uri"), system_credentials=data.get("system_credentials") or {})
        return [{"authorization_url": url}]

    def oauth_get_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        creds = self._oauth(session, data).oauth_get_credentials(
            redirect_uri=need(data, "redirect_uri"), system_credentials=data.get("system_credentials") or {},
            request=raw_http_request(data))
        return oauth_credentials_answer(creds)

    def oauth_refresh_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        creds = self._oauth(session, data).oauth_refresh_credentials(
            redirect_uri=need(data, "redirect_uri"), system_credentials=data.get("system_credentials") or {},
            credentials=data.get("credentials") or {})
        return oauth_refreshed_answer(creds)

    def fetch_parameter_options(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        """``provider_action: provider`` asks the subscription constructor; an event's name asks the event."""
        from plugdock.sdk.trigger_entities import Subscription

        action = need(data, "provider_action")
        if action == "provider":
            target = self._constructor(session, data)
        else:
            nothing = Subscription(expires_at=-1, endpoint="NO_SUBSCRIPTION", properties={})
            target = self._event(session, data, action, nothing, "unauthorized")
        return [{"options": _options(target.fetch_parameter_options(parameter=need(data, "parameter")))}]
