"""Tool providers and tools: what a tool plugin author subclasses.

Method names and signatures match the official ``dify_plugin`` SDK so a port is a change of imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from plugdock.sdk.entities import ParameterOption
from plugdock.sdk.file import DIFY_FILE_IDENTITY, DIFY_TOOL_SELECTOR_IDENTITY, File
from plugdock.sdk.messages import AgentInvokeMessage, InvokeMessage, ToolInvokeMessage

if TYPE_CHECKING:
    from plugdock.sdk.session import Session

T = TypeVar("T", bound=InvokeMessage)


class CredentialType(StrEnum):
    API_KEY = "api-key"
    OAUTH = "oauth2"
    UNAUTHORIZED = "unauthorized"


@dataclass
class ToolRuntime:
    credentials: dict[str, Any]
    user_id: str | None = None
    session_id: str | None = None
    credential_type: CredentialType | str = CredentialType.API_KEY


@dataclass
class OAuthCredentials:
    credentials: Mapping[str, Any]
    expires_at: int = -1
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ToolOAuthCredentials:
    credentials: Mapping[str, Any]
    expires_at: int | None = -1


@dataclass
class ToolSelector:
    """A tool chosen by the user in an ``array[tools]`` parameter (agent strategies use these)."""

    @dataclass
    class Parameter:
        name: str
        type: str
        required: bool
        description: str
        default: int | float | str | None = None
        options: list[Any] | None = None

    provider_id: str
    tool_name: str
    tool_description: str
    tool_configuration: Mapping[str, Any]
    tool_parameters: Mapping[str, ToolSelector.Parameter]
    provider_type: str = "builtin"
    credential_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def model_validate(cls, value: Mapping[str, Any]) -> ToolSelector:
        params = {
            name: cls.Parameter(**{k: v for k, v in p.items() if k in cls.Parameter.__dataclass_fields__})
            for name, p in (value.get("tool_parameters") or {}).items()
        }
        return cls(provider_id=value["provider_id"], tool_name=value["tool_name"],
                   tool_description=value.get("tool_description", ""),
                   tool_configuration=value.get("tool_configuration") or {}, tool_parameters=params,
                   provider_type=value.get("provider_type", "builtin"), credential_id=value.get("credential_id"),
                   extra=value.get("extra") or {})

    def to_prompt_message(self) -> Any:
        """The tool as an OpenAI-style function for an LLM call."""
        from plugdock.sdk.model.message import PromptMessageTool

        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, p in self.tool_parameters.items():
            kind = {"select": "string", "secret-input": "string", "date": "string"}.get(p.type, p.type)
            schema: dict[str, Any] = {"type": kind, "description": p.description or ""}
            if p.options:
                schema["enum"] = [o["value"] if isinstance(o, Mapping) else o.value for o in p.options]
            properties[name] = schema
            if p.required:
                required.append(name)
        return PromptMessageTool(name=self.tool_name, description=self.tool_description,
                                 parameters={"type": "object", "properties": properties, "required": required})


class ToolLike(ABC, Generic[T]):
    """Message helpers shared by tools and agent strategies."""

    response_type: type[T]

    def create_text_message(self, text: str) -> T:
        return self.response_type(type=InvokeMessage.MessageType.TEXT, message=InvokeMessage.TextMessage(text=text))

    def create_json_message(self, json: Mapping[str, Any] | list[Any]) -> T:
        return self.response_type(type=InvokeMessage.MessageType.JSON,
                                  message=InvokeMessage.JsonMessage(json_object=json))

    def create_image_message(self, image_url: str) -> T:
        return self.response_type(type=InvokeMessage.MessageType.IMAGE,
                                  message=InvokeMessage.TextMessage(text=image_url))

    def create_link_message(self, link: str) -> T:
        return self.response_type(type=InvokeMessage.MessageType.LINK, message=InvokeMessage.TextMessage(text=link))

    def create_blob_message(self, blob: bytes, meta: dict[str, Any] | None = None) -> T:
        """Binary content (a generated file); ``meta`` should carry ``mime_type`` and may carry ``filename``."""
        return self.response_type(type=InvokeMessage.MessageType.BLOB, message=InvokeMessage.BlobMessage(blob=blob),
                                  meta=meta)

    def create_variable_message(self, variable_name: str, variable_value: Any) -> T:
        return self.response_type(type=InvokeMessage.MessageType.VARIABLE, message=InvokeMessage.VariableMessage(
            variable_name=variable_name, variable_value=variable_value))

    def create_stream_variable_message(self, variable_name: str, variable_value: str) -> T:
        return self.response_type(type=InvokeMessage.MessageType.VARIABLE, message=InvokeMessage.VariableMessage(
            variable_name=variable_name, variable_value=variable_value, stream=True))

    def create_log_message(
        self,
        label: str,
        data: Mapping[str, Any],
        status: InvokeMessage.LogMessage.LogStatus = InvokeMessage.LogMessage.LogStatus.SUCCESS,
        parent: T | None = None,
        metadata: Mapping[Any, Any] | None = None,
    ) -> T:
        parent_id = parent.message.id if parent is not None and isinstance(
            parent.message, InvokeMessage.LogMessage) else None
        return self.response_type(type=InvokeMessage.MessageType.LOG, message=InvokeMessage.LogMessage(
            label=label, data=data, status=status, parent_id=parent_id, metadata=metadata))

    def finish_log_message(
        self,
        log: T,
        status: InvokeMessage.LogMessage.LogStatus = InvokeMessage.LogMessage.LogStatus.SUCCESS,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[Any, Any] | None = None,
    ) -> T:
        if not isinstance(log.message, InvokeMessage.LogMessage):
            raise TypeError("Log message payload is required")
        return self.response_type(type=InvokeMessage.MessageType.LOG, message=InvokeMessage.LogMessage(
            id=log.message.id, label=log.message.label, data=data or log.message.data, status=status,
            parent_id=log.message.parent_id, error=error, metadata=metadata or log.message.metadata))

    def create_retriever_resource_message(
        self, retriever_resources: list[InvokeMessage.RetrieverResourceMessage.RetrieverResource], context: str
    ) -> T:
        return self.response_type(type=InvokeMessage.MessageType.RETRIEVER_RESOURCES,
                                  message=InvokeMessage.RetrieverResourceMessage(
                                      retriever_resources=retriever_resources, context=context))

    def _get_runtime_parameters(self) -> list[Any]:
        return []

    @classmethod
    def has_runtime_parameters(cls) -> bool:
        return any("_get_runtime_parameters" in k.__dict__ for k in cls.__mro__ if k not in (ToolLike, Tool))

    @classmethod
    def _convert_parameters(cls, tool_parameters: dict[str, Any]) -> dict[str, Any]:
        """Turn the host's file and tool-selector dicts into ``File`` and ``ToolSelector`` objects."""
        converted = dict(tool_parameters)
        for name, value in tool_parameters.items():
            converted[name] = _convert_value(value)
        return converted


def _identity(value: Any) -> str | None:
    return value.get("dify_model_identity") if isinstance(value, dict) else None


def _convert_value(value: Any) -> Any:
    if _identity(value) == DIFY_FILE_IDENTITY:
        return File.from_wire(value)
    if _identity(value) == DIFY_TOOL_SELECTOR_IDENTITY:
        return ToolSelector.model_validate(value)
    if isinstance(value, list) and value and all(_identity(v) == DIFY_FILE_IDENTITY for v in value):
        return [File.from_wire(v) for v in value]
    if isinstance(value, list) and value and all(_identity(v) == DIFY_TOOL_SELECTOR_IDENTITY for v in value):
        return [ToolSelector.model_validate(v) for v in value]
    return value


class ToolProvider:
    """A tool provider: checks credentials and, optionally, runs OAuth."""

    def validate_credentials(self, credentials: dict[str, Any]) -> None:
        return self._validate_credentials(credentials)

    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        raise NotImplementedError(
            "The tool you are using does not support credentials validation, please implement "
            "`_validate_credentials` method"
        )

    def oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        return self._oauth_get_authorization_url(redirect_uri, system_credentials)

    def _oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        raise NotImplementedError("This tool provider does not support OAuth: implement `_oauth_get_authorization_url`")

    def oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                              request: Any) -> OAuthCredentials:
        result = self._oauth_get_credentials(redirect_uri, system_credentials, request)
        return OAuthCredentials(credentials=result.credentials, expires_at=_expiry(result.expires_at))

    def _oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                               request: Any) -> ToolOAuthCredentials:
        raise NotImplementedError("This tool provider does not support OAuth: implement `_oauth_get_credentials`")

    def oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                  credentials: Mapping[str, Any]) -> OAuthCredentials:
        result = self._oauth_refresh_credentials(redirect_uri, system_credentials, credentials)
        return OAuthCredentials(credentials=result.credentials, expires_at=_expiry(result.expires_at))

    def _oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                   credentials: Mapping[str, Any]) -> ToolOAuthCredentials:
        raise NotImplementedError("This tool provider does not support OAuth: implement `_oauth_refresh_credentials`")


def _expiry(value: int | None) -> int:
    return -1 if value is None else value


class Tool(ToolLike[ToolInvokeMessage]):
    """A tool: implement ``_invoke`` and yield messages made with the ``create_*`` helpers."""

    runtime: ToolRuntime
    session: Session

    def __init__(self, runtime: ToolRuntime, session: Session) -> None:
        self.runtime = runtime
        self.session = session
        self.response_type = ToolInvokeMessage

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any], user_id: str | None = None) -> Tool:
        from plugdock.sdk.session import Session

        return cls(runtime=ToolRuntime(credentials=credentials, user_id=user_id), session=Session.empty_session())

    @abstractmethod
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        """Do the work; yield messages."""

    def _fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        raise NotImplementedError("implement `_fetch_parameter_options` to serve a dynamic-select parameter")

    def invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        return self._invoke(self._convert_parameters(tool_parameters))

    def get_runtime_parameters(self) -> list[Any]:
        return self._get_runtime_parameters()

    def fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        return self._fetch_parameter_options(parameter)


__all__ = [
    "AgentInvokeMessage",
    "CredentialType",
    "OAuthCredentials",
    "Tool",
    "ToolInvokeMessage",
    "ToolLike",
    "ToolOAuthCredentials",
    "ToolProvider",
    "ToolRuntime",
    "ToolSelector",
]
