"""What every action module shares: the handler type, the request errors and the field check.

Its own module so that ``executor`` (the generic actions) and ``model_actions`` (loaded only by
model plugins) both depend on it and never on each other.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from plugdock.sdk.session import Session

Handler = Callable[[Session, dict[str, Any]], Iterable[Any]]


class UnknownActionError(Exception):
    """The request names an access type or action this plugin does not serve."""


class RequestDataError(Exception):
    """A request lacks a field the action needs, or a field has the wrong type."""


class NotFoundError(ValueError):
    """The request names a provider, tool, model or strategy this plugin does not have.

    Reported with ``error_type`` ``ValueError`` and the official SDK's wording, which hosts already handle.
    """


def need(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    """The request field ``name``, checked to be of ``kind``; a ``RequestDataError`` otherwise."""
    if name not in data:
        raise RequestDataError(f"request data is missing {name!r}")
    value = data[name]
    if not isinstance(value, kind):
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RequestDataError(f"request field {name!r} must be {wanted}, got {type(value).__name__}")
    return value


def for_providers(providers: Mapping[str, Any], ours: Handler, fallback: Handler | None) -> Handler:
    """A handler for an action several kinds of provider answer (OAuth, dynamic options): ``ours`` for these
    providers, ``fallback`` (the tool providers' handler) for every other."""
    def route(session: Session, data: dict[str, Any]) -> Iterable[Any]:
        if data.get("provider") in providers or fallback is None:
            return ours(session, data)
        return fallback(session, data)

    return route


def raw_http_request(data: Mapping[str, Any]) -> Any:
    """The werkzeug request a dispatch carries hex-encoded in ``raw_http_request`` (endpoints, OAuth callbacks,
    webhooks); a ``RequestDataError`` naming the field when it is not one."""
    from plugdock.runtime.http_wire import parse_request

    try:
        return parse_request(binascii.unhexlify(need(data, "raw_http_request")))
    except (binascii.Error, ValueError) as exc:
        raise RequestDataError(f"raw_http_request is not a hex-encoded HTTP request: {exc}") from None


def oauth_credentials_answer(creds: Any) -> list[dict[str, Any]]:
    """The answer to ``oauth/get_credentials``, as the official SDK shapes it for every provider kind."""
    return [{"metadata": dict(creds.metadata or {}), "credentials": dict(creds.credentials),
             "expires_at": creds.expires_at}]


def oauth_refreshed_answer(creds: Any) -> list[dict[str, Any]]:
    """The answer to ``oauth/refresh_credentials``."""
    return [{"credentials": dict(creds.credentials), "expires_at": creds.expires_at}]
