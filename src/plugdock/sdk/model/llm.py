"""``LargeLanguageModel``: implement ``_invoke`` (streaming or not), ``get_num_tokens``, ``validate_credentials``."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator, Mapping
from typing import Any, ClassVar

from plugdock.sdk.model.base import AIModel
from plugdock.sdk.model.entities import (
    LLMMode,
    LLMResult,
    LLMResultChunk,
    LLMUsage,
    ModelPropertyKey,
    ModelType,
    ParameterRule,
    PriceType,
)
from plugdock.sdk.model.message import PromptMessage, PromptMessageTool


class LargeLanguageModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.LLM

    @abstractmethod
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
        """Call the model; return an ``LLMResult`` or yield ``LLMResultChunk``s."""

    @abstractmethod
    def get_num_tokens(self, model: str, credentials: dict[str, Any], prompt_messages: list[PromptMessage],
                       tools: list[PromptMessageTool] | None = None) -> int:
        """Tokens the prompt would use."""

    def invoke(
        self,
        model: str,
        credentials: dict[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any] | None = None,
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> Generator[LLMResultChunk, None, None]:
        """Run ``_invoke`` with errors mapped to invoke-error kinds; always yields chunks."""
        parameters = self._validate_and_filter_model_parameters(model, model_parameters or {}, credentials)
        with self.timing_context():
            try:
                result = self._invoke(model, credentials, prompt_messages, parameters, tools, stop, stream, user)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc
            if isinstance(result, LLMResult):
                yield result.to_llm_result_chunk()
                return
            try:
                yield from result
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc

    def enforce_stop_tokens(self, text: str, stop: list[str]) -> str:
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        return text if cut < 0 else text[:cut]

    def get_parameter_rules(self, model: str, credentials: Mapping[str, Any]) -> list[ParameterRule]:
        schema = self.get_model_schema(model, credentials)
        return schema.parameter_rules if schema else []

    def get_model_mode(self, model: str, credentials: Mapping[str, Any] | None = None) -> LLMMode:
        schema = self.get_model_schema(model, credentials)
        mode = schema.model_properties.get(ModelPropertyKey.MODE) if schema else None
        return LLMMode.value_of(mode) if mode else LLMMode.CHAT

    def _calc_response_usage(self, model: str, credentials: Mapping[str, Any], prompt_tokens: int,
                             completion_tokens: int) -> LLMUsage:
        prompt = self.get_price(model, credentials, PriceType.INPUT, prompt_tokens)
        completion = self.get_price(model, credentials, PriceType.OUTPUT, completion_tokens)
        import time

        return LLMUsage(
            prompt_tokens=prompt_tokens, prompt_unit_price=prompt.unit_price, prompt_price_unit=prompt.unit,
            prompt_price=prompt.total_amount, completion_tokens=completion_tokens,
            completion_unit_price=completion.unit_price, completion_price_unit=completion.unit,
            completion_price=completion.total_amount, total_tokens=prompt_tokens + completion_tokens,
            total_price=prompt.total_amount + completion.total_amount, currency=prompt.currency,
            latency=time.perf_counter() - self.started_at if self.started_at else 0.0,
        )

    def _validate_and_filter_model_parameters(self, model: str, model_parameters: dict[str, Any],
                                              credentials: Mapping[str, Any]) -> dict[str, Any]:
        """Keep declared parameters (all of them when the model declares none), within their bounds."""
        rules = self.get_parameter_rules(model, credentials)
        if not rules:
            return dict(model_parameters)
        filtered: dict[str, Any] = {}
        for rule in rules:
            name = rule.name
            if name not in model_parameters:
                if rule.required and rule.default is not None:
                    filtered[name] = rule.default
                elif rule.required:
                    raise ValueError(f"Model Parameter {name} is required.")
                continue
            value = model_parameters[name]
            if rule.min is not None and isinstance(value, int | float) and value < rule.min:
                raise ValueError(f"Model Parameter {name} should be greater than or equal to {rule.min}.")
            if rule.max is not None and isinstance(value, int | float) and value > rule.max:
                raise ValueError(f"Model Parameter {name} should be less than or equal to {rule.max}.")
            if rule.options and value not in rule.options:
                raise ValueError(f"Model Parameter {name} should be one of {rule.options}.")
            filtered[name] = value
        return filtered
