"""Model schemas, usage and results (same classes and fields as the official SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plugdock.sdk.model.message import AssistantPromptMessage, PromptMessage

__all__ = [
    "AIModelEntity",
    "BaseModelConfig",
    "DefaultParameterName",
    "EmbeddingInputType",
    "EmbeddingUsage",
    "FetchFrom",
    "I18nObject",
    "LLMMode",
    "LLMModelConfig",
    "LLMResult",
    "LLMResultChunk",
    "LLMResultChunkDelta",
    "LLMResultChunkWithStructuredOutput",
    "LLMResultWithStructuredOutput",
    "LLMStructuredOutput",
    "LLMUsage",
    "ModelFeature",
    "ModelPropertyKey",
    "ModelType",
    "ModelUsage",
    "ModerationModelConfig",
    "ModerationResult",
    "MultiModalContent",
    "MultiModalContentType",
    "MultiModalEmbeddingResult",
    "MultiModalRerankResult",
    "NumTokensResult",
    "ParameterRule",
    "ParameterType",
    "PriceConfig",
    "PriceInfo",
    "PriceType",
    "ProviderModel",
    "RerankDocument",
    "RerankModelConfig",
    "RerankResult",
    "Speech2TextModelConfig",
    "Speech2TextResult",
    "SummaryResult",
    "TTSModelConfig",
    "TTSResult",
    "TextEmbeddingModelConfig",
    "TextEmbeddingResult",
]


class I18nObject(BaseModel):
    en_US: str
    zh_Hans: str | None = None
    pt_BR: str | None = None
    ja_JP: str | None = None

    @model_validator(mode="after")
    def _fallback(self) -> I18nObject:
        self.zh_Hans = self.zh_Hans or self.en_US
        self.pt_BR = self.pt_BR or self.en_US
        self.ja_JP = self.ja_JP or self.en_US
        return self


class ModelType(Enum):
    LLM = "llm"
    TEXT_EMBEDDING = "text-embedding"
    RERANK = "rerank"
    SPEECH2TEXT = "speech2text"
    MODERATION = "moderation"
    TTS = "tts"

    @classmethod
    def value_of(cls, origin_model_type: str) -> ModelType:
        aliases = {"text_embedding": "text-embedding", "reranking": "rerank"}
        return cls(aliases.get(origin_model_type, origin_model_type))


class FetchFrom(Enum):
    PREDEFINED_MODEL = "predefined-model"
    CUSTOMIZABLE_MODEL = "customizable-model"


class ModelFeature(Enum):
    TOOL_CALL = "tool-call"
    MULTI_TOOL_CALL = "multi-tool-call"
    AGENT_THOUGHT = "agent-thought"
    VISION = "vision"
    STREAM_TOOL_CALL = "stream-tool-call"
    DOCUMENT = "document"
    VIDEO = "video"
    AUDIO = "audio"
    STRUCTURED_OUTPUT = "structured-output"
    POLLING = "polling"


class DefaultParameterName(Enum):
    TEMPERATURE = "temperature"
    TOP_P = "top_p"
    TOP_K = "top_k"
    PRESENCE_PENALTY = "presence_penalty"
    FREQUENCY_PENALTY = "frequency_penalty"
    MAX_TOKENS = "max_tokens"
    RESPONSE_FORMAT = "response_format"
    JSON_SCHEMA = "json_schema"


class ParameterType(Enum):
    FLOAT = "float"
    INT = "int"
    STRING = "string"
    BOOLEAN = "boolean"
    TEXT = "text"


class ModelPropertyKey(Enum):
    MODE = "mode"
    CONTEXT_SIZE = "context_size"
    MAX_CHUNKS = "max_chunks"
    FILE_UPLOAD_LIMIT = "file_upload_limit"
    SUPPORTED_FILE_EXTENSIONS = "supported_file_extensions"
    MAX_CHARACTERS_PER_CHUNK = "max_characters_per_chunk"
    DEFAULT_VOICE = "default_voice"
    VOICES = "voices"
    WORD_LIMIT = "word_limit"
    AUDIO_TYPE = "audio_type"
    MAX_WORKERS = "max_workers"


class ProviderModel(BaseModel):
    model: str
    label: I18nObject
    model_type: ModelType
    features: list[ModelFeature] | None = None
    fetch_from: FetchFrom = FetchFrom.PREDEFINED_MODEL
    model_properties: dict[ModelPropertyKey, Any] = Field(default_factory=dict)
    deprecated: bool = False
    model_config = ConfigDict(protected_namespaces=())


class ParameterRule(BaseModel):
    name: str
    use_template: str | None = None
    label: I18nObject
    type: ParameterType
    help: I18nObject | None = None
    required: bool = False
    default: Any | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[str] = Field(default_factory=list)


class PriceConfig(BaseModel):
    input: Decimal
    output: Decimal | None = None
    unit: Decimal
    currency: str


class AIModelEntity(ProviderModel):
    parameter_rules: list[ParameterRule] = Field(default_factory=list)
    pricing: PriceConfig | None = None


class ModelUsage(BaseModel):
    pass


class PriceType(Enum):
    INPUT = "input"
    OUTPUT = "output"


class PriceInfo(BaseModel):
    unit_price: Decimal
    unit: Decimal
    total_amount: Decimal
    currency: str


class BaseModelConfig(BaseModel):
    provider: str
    model: str
    model_type: ModelType
    model_config = ConfigDict(protected_namespaces=())


class LLMMode(Enum):
    COMPLETION = "completion"
    CHAT = "chat"

    @classmethod
    def value_of(cls, value: str) -> LLMMode:
        return cls(value)


class LLMUsage(ModelUsage):
    prompt_tokens: int
    prompt_unit_price: Decimal
    prompt_price_unit: Decimal
    prompt_price: Decimal
    completion_tokens: int
    completion_unit_price: Decimal
    completion_price_unit: Decimal
    completion_price: Decimal
    total_tokens: int
    total_price: Decimal
    currency: str
    latency: float

    @classmethod
    def empty_usage(cls) -> LLMUsage:
        zero = Decimal("0.0")
        return cls(prompt_tokens=0, prompt_unit_price=zero, prompt_price_unit=zero, prompt_price=zero,
                   completion_tokens=0, completion_unit_price=zero, completion_price_unit=zero,
                   completion_price=zero, total_tokens=0, total_price=zero, currency="USD", latency=0.0)


class LLMResultChunkDelta(BaseModel):
    index: int
    message: AssistantPromptMessage
    usage: LLMUsage | None = None
    finish_reason: str | None = None


class LLMResultChunk(BaseModel):
    model: str
    prompt_messages: list[PromptMessage] = Field(default_factory=list)
    system_fingerprint: str | None = None
    delta: LLMResultChunkDelta

    @field_validator("prompt_messages", mode="before")
    @classmethod
    def _drop_prompt_messages(cls, _value: Any) -> list[PromptMessage]:
        return []  # deprecated field, always empty on the wire (as in the official SDK)


class LLMStructuredOutput(BaseModel):
    structured_output: Mapping[str, Any] | None = None


class LLMResultChunkWithStructuredOutput(LLMResultChunk, LLMStructuredOutput):
    pass


class LLMResult(BaseModel):
    model: str
    prompt_messages: list[PromptMessage] = Field(default_factory=list)
    message: AssistantPromptMessage
    usage: LLMUsage
    system_fingerprint: str | None = None

    @field_validator("prompt_messages", mode="before")
    @classmethod
    def _drop_prompt_messages(cls, _value: Any) -> list[PromptMessage]:
        return []

    def to_llm_result_chunk(self) -> LLMResultChunk:
        return LLMResultChunk(model=self.model, system_fingerprint=self.system_fingerprint,
                              delta=LLMResultChunkDelta(index=0, message=self.message, usage=self.usage))


class LLMResultWithStructuredOutput(LLMResult, LLMStructuredOutput):
    pass


class SummaryResult(BaseModel):
    summary: str


class NumTokensResult(PriceInfo):
    tokens: int


class LLMModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.LLM
    mode: str
    completion_params: dict[str, Any] = Field(default_factory=dict)


class EmbeddingInputType(Enum):
    DOCUMENT = "document"
    QUERY = "query"


class EmbeddingUsage(ModelUsage):
    tokens: int
    total_tokens: int
    unit_price: Decimal
    price_unit: Decimal
    total_price: Decimal
    currency: str
    latency: float


class TextEmbeddingResult(BaseModel):
    model: str
    embeddings: list[list[float]]
    usage: EmbeddingUsage


class TextEmbeddingModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.TEXT_EMBEDDING


class MultiModalContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"


class MultiModalContent(BaseModel):
    content: str
    content_type: MultiModalContentType = MultiModalContentType.TEXT


class MultiModalEmbeddingResult(BaseModel):
    model: str
    embeddings: list[list[float]]
    usage: EmbeddingUsage


class RerankDocument(BaseModel):
    index: int
    text: str
    score: float


class RerankResult(BaseModel):
    model: str
    docs: list[RerankDocument]


class MultiModalRerankResult(BaseModel):
    model: str
    docs: list[RerankDocument]


class RerankModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.RERANK
    score_threshold: float
    top_n: int


class TTSModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.TTS
    voice: str


class TTSResult(BaseModel):
    result: str
    mime_type: str | None = None


class Speech2TextModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.SPEECH2TEXT


class Speech2TextResult(BaseModel):
    result: str


class ModerationModelConfig(BaseModelConfig):
    model_type: ModelType = ModelType.MODERATION


class ModerationResult(BaseModel):
    result: bool
