"""Prompt messages exchanged with LLMs (same classes and fields as the official SDK)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, JsonValue, field_validator


class PromptMessageRole(Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    DEVELOPER = "developer"

    @classmethod
    def value_of(cls, value: str) -> PromptMessageRole:
        return cls(value)


class PromptMessageTool(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class PromptMessageFunction(BaseModel):
    type: str = "function"
    function: PromptMessageTool


class PromptMessageContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"


class PromptMessageContent(BaseModel):
    opaque_body: JsonValue | None = None


class TextPromptMessageContent(PromptMessageContent):
    type: Literal[PromptMessageContentType.TEXT] = PromptMessageContentType.TEXT
    data: str


class MultiModalPromptMessageContent(PromptMessageContent):
    format: str
    base64_data: str = ""
    url: str = ""
    mime_type: str
    filename: str = ""

    @property
    def data(self) -> str:
        return self.url or f"data:{self.mime_type};base64,{self.base64_data}"


class VideoPromptMessageContent(MultiModalPromptMessageContent):
    type: Literal[PromptMessageContentType.VIDEO] = PromptMessageContentType.VIDEO


class AudioPromptMessageContent(MultiModalPromptMessageContent):
    type: Literal[PromptMessageContentType.AUDIO] = PromptMessageContentType.AUDIO


class ImagePromptMessageContent(MultiModalPromptMessageContent):
    class DETAIL(Enum):
        LOW = "low"
        HIGH = "high"

    type: Literal[PromptMessageContentType.IMAGE] = PromptMessageContentType.IMAGE
    detail: DETAIL = DETAIL.LOW


class DocumentPromptMessageContent(MultiModalPromptMessageContent):
    type: Literal[PromptMessageContentType.DOCUMENT] = PromptMessageContentType.DOCUMENT


_CONTENT_TYPES: dict[str, type[PromptMessageContent]] = {
    "text": TextPromptMessageContent, "image": ImagePromptMessageContent, "audio": AudioPromptMessageContent,
    "video": VideoPromptMessageContent, "document": DocumentPromptMessageContent,
}


class PromptMessage(BaseModel):
    role: PromptMessageRole
    content: str | list[PromptMessageContent] | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if isinstance(value, str) or value is None or not isinstance(value, Sequence):
            return value
        result: list[PromptMessageContent] = []
        for item in value:
            if isinstance(item, PromptMessageContent):
                result.append(item)
            elif isinstance(item, Mapping) and str(item.get("type")) in _CONTENT_TYPES:
                result.append(_CONTENT_TYPES[str(item["type"])].model_validate(item))
            else:
                raise ValueError(f"invalid prompt message content: {item!r}")
        return result

    def is_empty(self) -> bool:
        return not self.content

    def get_text_content(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(c.data for c in self.content if isinstance(c, TextPromptMessageContent))
        return ""


class UserPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.USER


def _empty_str(value: Any) -> Any:
    return "" if value is None else value


class AssistantPromptMessage(PromptMessage):
    class ToolCall(BaseModel):
        class ToolCallFunction(BaseModel):
            name: Annotated[str, BeforeValidator(_empty_str)]
            arguments: Annotated[str, BeforeValidator(_empty_str)]

        id: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))]
        type: Annotated[str, BeforeValidator(_empty_str)]
        function: ToolCallFunction

    role: PromptMessageRole = PromptMessageRole.ASSISTANT
    tool_calls: list[ToolCall] = Field(default_factory=list)
    opaque_body: JsonValue | None = None

    def is_empty(self) -> bool:
        return super().is_empty() and not self.tool_calls


class SystemPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.SYSTEM


class DeveloperPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.DEVELOPER


class ToolPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.TOOL
    tool_call_id: str

    def is_empty(self) -> bool:
        return super().is_empty() and not self.tool_call_id


PROMPT_MESSAGE_TYPES_BY_ROLE: dict[str, type[PromptMessage]] = {
    "user": UserPromptMessage, "assistant": AssistantPromptMessage, "system": SystemPromptMessage,
    "developer": DeveloperPromptMessage, "tool": ToolPromptMessage,
}


def ensure_prompt_message(value: PromptMessage | Mapping[str, Any]) -> PromptMessage:
    """A prompt message of the class its role names (the wire carries plain dicts)."""
    if isinstance(value, PromptMessage):
        return value
    if not isinstance(value, Mapping):
        raise TypeError("prompt message must be a PromptMessage or a mapping")
    role = value.get("role")
    role = role.value if isinstance(role, PromptMessageRole) else role
    return PROMPT_MESSAGE_TYPES_BY_ROLE.get(str(role), PromptMessage).model_validate(dict(value))
