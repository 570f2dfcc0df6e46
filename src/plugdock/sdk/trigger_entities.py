"""What trigger code passes around: subscriptions, dispatch results, event variables, runtimes and errors.

Names, fields and defaults are the official SDK's (``dify_plugin.entities.trigger``,
``dify_plugin.interfaces.trigger.runtime``, ``dify_plugin.errors.trigger``); plain dataclasses here, so a
trigger plugin starts without pydantic. ``model_dump`` gives the official wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugdock.sdk.tool import CredentialType

if TYPE_CHECKING:
    from werkzeug import Response

    from plugdock.sdk.session import Session


@dataclass(kw_only=True)
class Subscription:
    """A webhook subscription: where Dify receives events and what the provider needs to check them."""

    expires_at: int = -1
    endpoint: str
    parameters: Mapping[str, Any] | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    def model_dump(self) -> dict[str, Any]:
        return {"expires_at": self.expires_at, "endpoint": self.endpoint,
                "parameters": dict(self.parameters) if self.parameters is not None else None,
                "properties": dict(self.properties)}

    @classmethod
    def model_validate(cls, data: Any) -> Subscription:
        """From the request's ``subscription`` object; a precise ``ValueError`` for a wrong one."""
        if isinstance(data, Subscription):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"subscription must be an object, got {type(data).__name__}")
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str):
            raise ValueError("subscription.endpoint is required and must be a string")
        expires_at = data.get("expires_at", -1)
        if isinstance(expires_at, bool) or not isinstance(expires_at, int):
            raise ValueError(f"subscription.expires_at must be an integer, got {expires_at!r}")
        parameters, properties = data.get("parameters"), data.get("properties", {})
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ValueError("subscription.parameters must be an object")
        if not isinstance(properties, Mapping):
            raise ValueError("subscription.properties must be an object")
        return cls(expires_at=expires_at, endpoint=endpoint, parameters=parameters, properties=properties)


@dataclass(kw_only=True)
class UnsubscribeResult:
    success: bool
    message: str | None = None

    def model_dump(self) -> dict[str, Any]:
        return {"success": self.success, "message": self.message}


@dataclass(kw_only=True)
class Variables:
    """What an event hands the workflow: the fields its ``output_schema`` declares."""

    variables: Mapping[str, Any]


@dataclass(kw_only=True)
class EventDispatch:
    """Which events a webhook request starts, the HTTP response for its sender, and the decoded payload."""

    user_id: str = ""
    events: list[str] = field(default_factory=list)
    response: Response
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class TriggerOAuthCredentials:
    credentials: Mapping[str, Any]
    expires_at: int | None = -1


@dataclass(frozen=True, slots=True)
class TriggerRuntime:
    session: Session
    credential_type: CredentialType | str
    credentials: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventRuntime:
    session: Session
    credential_type: CredentialType | str
    subscription: Subscription
    credentials: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TriggerSubscriptionConstructorRuntime:
    session: Session
    credential_type: CredentialType | str
    credentials: Mapping[str, Any] | None = None


class TriggerError(Exception):
    """Base of every trigger error."""


class SubscriptionError(TriggerError):
    """Creating or refreshing a subscription failed at the external service."""

    def __init__(self, message: str, error_code: str | None = None,
                 external_response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.external_response = external_response


class UnsubscribeError(TriggerError):
    """Removing a subscription failed at the external service."""

    def __init__(self, message: str, error_code: str | None = None,
                 external_response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.external_response = external_response


class TriggerValidationError(TriggerError):
    """A webhook request's signature or secret does not check out."""


class TriggerProviderCredentialValidationError(TriggerError):
    """The subscription constructor's credentials do not work."""


class TriggerDispatchError(TriggerError):
    """A webhook request cannot be parsed or routed to an event."""


class TriggerProviderOAuthError(TriggerError):
    """An OAuth step of a trigger provider failed."""


class EventIgnoreError(TriggerError):
    """The event does not match the user's filters: the workflow is not started (answered as cancelled)."""
