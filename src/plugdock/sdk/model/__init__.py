"""The model author API: providers, the six model kinds, and their entities (pydantic models).

Imported only by model plugins, so tool and endpoint plugins never pay for pydantic at start-up.
"""

from plugdock.sdk.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from plugdock.sdk.model import entities as _entities
from plugdock.sdk.model.base import AIModel
from plugdock.sdk.model.entities import *  # noqa: F403 - the entity names are the public API
from plugdock.sdk.model.kinds import ModerationModel, RerankModel, Speech2TextModel, TextEmbeddingModel, TTSModel
from plugdock.sdk.model.llm import LargeLanguageModel
from plugdock.sdk.model.message import (
    AssistantPromptMessage,
    AudioPromptMessageContent,
    DeveloperPromptMessage,
    DocumentPromptMessageContent,
    ImagePromptMessageContent,
    PromptMessage,
    PromptMessageContent,
    PromptMessageContentType,
    PromptMessageRole,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolPromptMessage,
    UserPromptMessage,
    VideoPromptMessageContent,
    ensure_prompt_message,
)
from plugdock.sdk.model.provider import ModelProvider

__all__ = [
    "AIModel",
    "AssistantPromptMessage",
    "AudioPromptMessageContent",
    "CredentialsValidateFailedError",
    "DeveloperPromptMessage",
    "DocumentPromptMessageContent",
    "ImagePromptMessageContent",
    "InvokeAuthorizationError",
    "InvokeBadRequestError",
    "InvokeConnectionError",
    "InvokeError",
    "InvokeRateLimitError",
    "InvokeServerUnavailableError",
    "LargeLanguageModel",
    "ModelProvider",
    "ModerationModel",
    "PromptMessage",
    "PromptMessageContent",
    "PromptMessageContentType",
    "PromptMessageRole",
    "PromptMessageTool",
    "RerankModel",
    "Speech2TextModel",
    "SystemPromptMessage",
    "TTSModel",
    "TextEmbeddingModel",
    "TextPromptMessageContent",
    "ToolPromptMessage",
    "UserPromptMessage",
    "VideoPromptMessageContent",
    "ensure_prompt_message",
    *_entities.__all__,
]
