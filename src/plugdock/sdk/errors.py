"""Errors a plugin raises; the class name travels to the host as ``error_type``, as in the official SDK."""

from __future__ import annotations


class ToolProviderCredentialValidationError(Exception):
    """The tool provider's credentials do not work."""


class ToolProviderOAuthError(Exception):
    """An OAuth step of a tool provider failed."""


class DatasourceCredentialValidationError(Exception):
    """A datasource provider's credentials do not work."""


class DatasourceOAuthError(Exception):
    """An OAuth step of a datasource provider failed."""


class CredentialsValidateFailedError(Exception):
    """A model provider's or model's credentials do not work."""


class InvokeError(Exception):
    """Base of model invocation errors; the host maps each subclass name to its own error kind."""

    description: str | None = None

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description)
        self.description = description

    def __str__(self) -> str:
        return self.description or self.__class__.__name__


class InvokeConnectionError(InvokeError):
    description = "Connection Error"


class InvokeServerUnavailableError(InvokeError):
    description = "Server Unavailable Error"


class InvokeRateLimitError(InvokeError):
    description = "Rate Limit Error"


class InvokeAuthorizationError(InvokeError):
    description = "Incorrect model credentials provided, please check and try again. "


class InvokeBadRequestError(InvokeError):
    description = "Bad Request Error"


class EndpointSetupFailedError(Exception):
    """An endpoint's settings cannot be used."""
