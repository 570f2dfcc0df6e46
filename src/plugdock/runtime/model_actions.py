"""Model actions (LLM, embedding, rerank, TTS, speech-to-text, moderation, credentials, schemas).

Kept apart from the other actions so that only model plugins load pydantic and the model entities.
"""

from __future__ import annotations

import binascii
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from plugdock.runtime.actions import Handler, NotFoundError, need
from plugdock.runtime.registry import ModelProviderEntry, PluginRegistry
from plugdock.sdk.session import Session


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def model_handlers(registry: PluginRegistry) -> dict[tuple[str, str], Handler]:
    if not registry.model_providers:
        return {}
    actions = ModelActions(registry)
    names = ("invoke_llm", "get_llm_num_tokens", "invoke_text_embedding", "invoke_multimodal_embedding",
             "get_text_embedding_num_tokens", "invoke_rerank", "invoke_multimodal_rerank", "invoke_tts",
             "get_tts_model_voices", "invoke_speech2text", "invoke_moderation", "validate_provider_credentials",
             "validate_model_credentials", "get_ai_model_schemas")
    return {("model", name): getattr(actions, name) for name in names}


class ModelActions:
    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry

    def _entry(self, data: Mapping[str, Any]) -> ModelProviderEntry:
        name = need(data, "provider")
        entry = self.registry.model_providers.get(name)
        if entry is None:
            raise NotFoundError(f"Provider `{name}` not found")
        return entry

    def _model(self, data: Mapping[str, Any], kind: str | None = None) -> Any:
        entry = self._entry(data)
        model_type = kind or str(data.get("model_type", ""))
        model_cls = entry.model_classes.get(model_type)
        if model_cls is None:
            raise NotFoundError(f"Model `{model_type}` not found for provider `{entry.name}`")
        return model_cls(entry.schemas())

    def _provider(self, data: Mapping[str, Any]) -> Any:
        from plugdock.sdk.model.entities import ModelType

        entry = self._entry(data)

        def factory(model_type: ModelType) -> Any:
            model_cls = entry.model_classes.get(model_type.value)
            return model_cls(entry.schemas()) if model_cls else None

        return entry.provider_cls(entry.declaration, factory)

    @staticmethod
    def _prompt(data: Mapping[str, Any]) -> tuple[list[Any], list[Any] | None]:
        from plugdock.sdk.model.message import PromptMessageTool, ensure_prompt_message

        messages = [ensure_prompt_message(m) for m in data.get("prompt_messages") or []]
        tools = [PromptMessageTool.model_validate(t) for t in data.get("tools") or []] or None
        return messages, tools

    def invoke_llm(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        model = self._model(data, "llm")
        messages, tools = self._prompt(data)
        chunks = model.invoke(data["model"], dict(data.get("credentials") or {}), messages,
                              dict(data.get("model_parameters") or {}), tools, data.get("stop"),
                              bool(data.get("stream", True)), data.get("user_id"))
        return (_dump(c) for c in chunks)

    def get_llm_num_tokens(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        messages, tools = self._prompt(data)
        count = self._model(data, "llm").get_num_tokens(data["model"], dict(data.get("credentials") or {}),
                                                         messages, tools)
        return [{"num_tokens": count}]

    def invoke_text_embedding(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        result = self._model(data, "text-embedding").invoke(
            data["model"], dict(data.get("credentials") or {}), list(data.get("texts") or []),
            user=data.get("user_id"), input_type=data.get("input_type") or "document")
        return [_dump(result)]

    def invoke_multimodal_embedding(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        result = self._model(data, "text-embedding").invoke_multimodal(
            data["model"], dict(data.get("credentials") or {}), list(data.get("documents") or []),
            user=data.get("user_id"), input_type=data.get("input_type") or "document")
        return [_dump(result)]

    def get_text_embedding_num_tokens(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        counts = self._model(data, "text-embedding").get_num_tokens(
            data["model"], dict(data.get("credentials") or {}), list(data.get("texts") or []))
        return [{"num_tokens": counts}]

    def invoke_rerank(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        result = self._model(data, "rerank").invoke(
            data["model"], dict(data.get("credentials") or {}), data.get("query", ""), list(data.get("docs") or []),
            data.get("score_threshold"), data.get("top_n"), data.get("user_id"))
        return [_dump(result)]

    def invoke_multimodal_rerank(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        result = self._model(data, "rerank").invoke_multimodal(
            data["model"], dict(data.get("credentials") or {}), data.get("query"), list(data.get("docs") or []),
            data.get("score_threshold"), data.get("top_n"), data.get("user_id"))
        return [_dump(result)]

    def invoke_tts(self, session: Session, data: dict[str, Any]) -> Iterator[Any]:
        model = self._model(data, "tts")
        credentials = dict(data.get("credentials") or {})
        mime = model.get_tts_model_mime_type(data["model"], credentials)
        for chunk in model.invoke(data["model"], data.get("tenant_id", ""), credentials,
                                  data.get("content_text", ""), data.get("voice", ""), data.get("user_id")):
            item = {"result": binascii.hexlify(chunk).decode()}
            if mime is not None:
                item["mime_type"] = mime
            yield item

    def get_tts_model_voices(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        voices = self._model(data, "tts").get_tts_model_voices(data["model"], dict(data.get("credentials") or {}),
                                                               data.get("language"))
        return [{"voices": voices}]

    def invoke_speech2text(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        audio = binascii.unhexlify(data.get("file", ""))
        text = self._model(data, "speech2text").invoke(data["model"], dict(data.get("credentials") or {}),
                                                        io.BytesIO(audio), data.get("user_id"))
        return [{"result": text}]

    def invoke_moderation(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        flagged = self._model(data, "moderation").invoke(data["model"], dict(data.get("credentials") or {}),
                                                          data.get("text", ""), data.get("user_id"))
        return [{"result": flagged}]

    def validate_provider_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        credentials = dict(data.get("credentials") or {})
        self._provider(data).validate_provider_credentials(credentials)
        return [{"result": True, "credentials": credentials}]

    def validate_model_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        credentials = dict(data.get("credentials") or {})
        self._model(data).validate_credentials(data["model"], credentials)
        return [{"result": True, "credentials": credentials}]

    def get_ai_model_schemas(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        schema = self._model(data).get_model_schema(data["model"], dict(data.get("credentials") or {}))
        return [{"model_schema": _dump(schema)}]
