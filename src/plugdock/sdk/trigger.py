"""Trigger plugins: what an author subclasses to turn webhook requests into workflow runs.

``Trigger`` checks a request and names the events it starts; ``Event`` turns the request into workflow
variables; ``TriggerSubscriptionConstructor`` creates, removes and refreshes subscriptions at the external
service (with API keys or OAuth). Class and method names, signatures and messages are the official SDK's
(``dify_plugin.interfaces.trigger``), so a port is a change of imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

from plugdock.sdk.entities import ParameterOption
from plugdock.sdk.tool import CredentialType, OAuthCredentials
from plugdock.sdk.trigger_entities import (
    EventDispatch,
    EventRuntime,
    Subscription,
    TriggerOAuthCredentials,
    TriggerRuntime,
    TriggerSubscriptionConstructorRuntime,
    UnsubscribeResult,
    Variables,
)

if TYPE_CHECKING:
    from werkzeug import Request

__all__ = ["Event", "Trigger", "TriggerSubscriptionConstructor"]


class Trigger(ABC):
    """Receives a provider's webhook requests: validate them, then say which events they start."""

    runtime: TriggerRuntime

    @final
    def __init__(self, runtime: TriggerRuntime) -> None:
        self.runtime = runtime

    def dispatch_event(self, subscription: Subscription, request: Request) -> EventDispatch:
        return self._dispatch_event(subscription=subscription, request=request)

    @abstractmethod
    def _dispatch_event(self, subscription: Subscription, request: Request) -> EventDispatch:
        raise NotImplementedError("This plugin should implement `_dispatch_event` method to enable event dispatch")


class TriggerSubscriptionConstructor(ABC):
    """Manages subscriptions at the external service; optional (a provider may only receive webhooks)."""

    runtime: TriggerSubscriptionConstructorRuntime

    def __init__(self, runtime: TriggerSubscriptionConstructorRuntime) -> None:
        self.runtime = runtime

    def validate_api_key(self, credentials: Mapping[str, Any]) -> None:
        return self._validate_api_key(credentials=credentials)

    def _validate_api_key(self, credentials: Mapping[str, Any]) -> None:
        raise NotImplementedError("This plugin should implement `_validate_api_key` method to enable credentials "
                                  "validation")

    def oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        return self._oauth_get_authorization_url(redirect_uri=redirect_uri, system_credentials=system_credentials)

    def _oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        raise NotImplementedError("The trigger you are using does not support OAuth, please implement "
                                  "`_oauth_get_authorization_url` method")

    def oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                              request: Request) -> OAuthCredentials:
        result = self._oauth_get_credentials(redirect_uri=redirect_uri, system_credentials=system_credentials,
                                             request=request)
        return OAuthCredentials(expires_at=result.expires_at or -1, credentials=result.credentials)

    def _oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                               request: Request) -> TriggerOAuthCredentials:
        raise NotImplementedError("The trigger you are using does not support OAuth, please implement "
                                  "`_oauth_get_credentials` method")

    def oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                  credentials: Mapping[str, Any]) -> OAuthCredentials:
        return self._oauth_refresh_credentials(redirect_uri=redirect_uri, system_credentials=system_credentials,
                                               credentials=credentials)

    def _oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                   credentials: Mapping[str, Any]) -> OAuthCredentials:
        raise NotImplementedError("The trigger you are using does not support OAuth, please implement "
                                  "`_oauth_refresh_credentials` method")

    def create_subscription(self, endpoint: str, parameters: Mapping[str, Any], credentials: Mapping[str, Any],
                            credential_type: CredentialType | str) -> Subscription:
        return self._create_subscription(endpoint=endpoint, parameters=parameters, credentials=credentials,
                                         credential_type=credential_type)

    @abstractmethod
    def _create_subscription(self, endpoint: str, parameters: Mapping[str, Any], credentials: Mapping[str, Any],
                             credential_type: CredentialType | str) -> Subscription:
        raise NotImplementedError("This plugin should implement `_create_subscription` method to enable event "
                                  "subscription")

    def delete_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                            credential_type: CredentialType | str) -> UnsubscribeResult:
        return self._delete_subscription(subscription=subscription, credentials=credentials,
                                         credential_type=credential_type)

    @abstractmethod
    def _delete_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                             credential_type: CredentialType | str) -> UnsubscribeResult:
        raise NotImplementedError("This plugin should implement `_delete_subscription` method to enable event "
                                  "unsubscription")

    def refresh_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                             credential_type: CredentialType | str) -> Subscription:
        return self._refresh_subscription(subscription=subscription, credentials=credentials,
                                          credential_type=credential_type)

    @abstractmethod
    def _refresh_subscription(self, subscription: Subscription, credentials: Mapping[str, Any],
                              credential_type: CredentialType | str) -> Subscription:
        raise NotImplementedError("This plugin should implement `_refresh` method to enable subscription refresh")

    def fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        return self._fetch_parameter_options(parameter=parameter, credentials=self.runtime.credentials or {},
                                             credential_type=self.runtime.credential_type)

    def _fetch_parameter_options(self, parameter: str, credentials: Mapping[str, Any],
                                 credential_type: CredentialType | str) -> list[ParameterOption]:
        raise NotImplementedError("This plugin should implement `_fetch_parameter_options` method to enable "
                                  "dynamic select parameter")


class Event(ABC):
    """One kind of event: turns the webhook request (and the dispatch's payload) into workflow variables.

    Raise ``EventIgnoreError`` when the request does not match the user's filters."""

    runtime: EventRuntime

    @final
    def __init__(self, runtime: EventRuntime) -> None:
        self.runtime = runtime

    @abstractmethod
    def _on_event(self, request: Request, parameters: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
        raise NotImplementedError

    def _fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        raise NotImplementedError("This plugin should implement `_fetch_parameter_options` method to enable "
                                  "dynamic select parameter")

    def on_event(self, request: Request, parameters: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
        return self._on_event(request=request, parameters=parameters, payload=payload)

    def fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        return self._fetch_parameter_options(parameter=parameter)
