from collections.abc import Generator
from typing import Any

from plugdock.sdk.model import (
    AIModelEntity,
    AssistantPromptMessage,
    FetchFrom,
    I18nObject,
    LargeLanguageModel,
    LLMResult,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
    ModelPropertyKey,
    ModelType,
    PromptMessage,
    PromptMessageTool,
)


class __CLASS__LargeLanguageModel(LargeLanguageModel):
    """An echo model: answers with the last user message. Replace the body with a real API call."""

    def _invoke(
        self,
        model: str,
        credentials: dict[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> LLMResult | Generator[LLMResultChunk, None, None]:
        text = str(prompt_messages[-1].content) if prompt_messages else ""
        usage = LLMUsage.empty_usage()
        if not stream:
            return LLMResult(model=model, prompt_messages=prompt_messages,
                             message=AssistantPromptMessage(content=text), usage=usage)

        def chunks() -> Generator[LLMResultChunk, None, None]:
            for index, word in enumerate(text.split(" ")):
                yield LLMResultChunk(model=model, prompt_messages=prompt_messages, delta=LLMResultChunkDelta(
                    index=index, message=AssistantPromptMessage(content=(" " if index else "") + word)))
        return chunks()

    def get_num_tokens(self, model: str, credentials: dict[str, Any], prompt_messages: list[PromptMessage],
                       tools: list[PromptMessageTool] | None = None) -> int:
        return sum(len(str(m.content or "").split()) for m in prompt_messages)

    def validate_credentials(self, model: str, credentials: dict[str, Any]) -> None:
        pass

    def get_customizable_model_schema(self, model: str, credentials: dict[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 4096},
            parameter_rules=[],
        )

    @property
    def _invoke_error_mapping(self) -> dict[type[Exception], list[type[Exception]]]:
        return {}
