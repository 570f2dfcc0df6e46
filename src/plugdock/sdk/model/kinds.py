"""The other model kinds: text embedding, rerank, text-to-speech, speech-to-text and moderation."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator, Iterable
from typing import IO, Any, ClassVar

from plugdock.sdk.model.base import AIModel
from plugdock.sdk.model.entities import (
    EmbeddingInputType,
    ModelPropertyKey,
    ModelType,
    MultiModalContent,
    MultiModalEmbeddingResult,
    MultiModalRerankResult,
    RerankResult,
    TextEmbeddingResult,
)


class TextEmbeddingModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.TEXT_EMBEDDING

    @abstractmethod
    def _invoke(self, model: str, credentials: dict[str, Any], texts: list[str], user: str | None = None,
                input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT) -> TextEmbeddingResult:
        """Embed ``texts``."""

    @abstractmethod
    def get_num_tokens(self, model: str, credentials: dict[str, Any], texts: list[str]) -> list[int]:
        """Tokens of each text."""

    def invoke(self, model: str, credentials: dict[str, Any], texts: list[str], user: str | None = None,
               input_type: EmbeddingInputType | str = EmbeddingInputType.DOCUMENT) -> TextEmbeddingResult:
        kind = input_type if isinstance(input_type, EmbeddingInputType) else EmbeddingInputType(input_type)
        with self.timing_context():
            try:
                return self._invoke(model, credentials, texts, user, kind)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc

    def _invoke_multimodal(self, model: str, credentials: dict[str, Any], documents: list[MultiModalContent],
                           user: str | None = None,
                           input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT) -> MultiModalEmbeddingResult:
        raise NotImplementedError("this model does not embed images: implement _invoke_multimodal")

    def invoke_multimodal(self, model: str, credentials: dict[str, Any], documents: list[Any],
                          user: str | None = None,
                          input_type: EmbeddingInputType | str = EmbeddingInputType.DOCUMENT
                          ) -> MultiModalEmbeddingResult:
        docs = [d if isinstance(d, MultiModalContent) else MultiModalContent.model_validate(d) for d in documents]
        kind = input_type if isinstance(input_type, EmbeddingInputType) else EmbeddingInputType(input_type)
        with self.timing_context():
            try:
                return self._invoke_multimodal(model, credentials, docs, user, kind)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc

    def _get_context_size(self, model: str, credentials: dict[str, Any]) -> int:
        schema = self.get_model_schema(model, credentials)
        return int(schema.model_properties.get(ModelPropertyKey.CONTEXT_SIZE, 1000)) if schema else 1000

    def _get_max_chunks(self, model: str, credentials: dict[str, Any]) -> int:
        schema = self.get_model_schema(model, credentials)
        return int(schema.model_properties.get(ModelPropertyKey.MAX_CHUNKS, 1)) if schema else 1


class RerankModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.RERANK

    @abstractmethod
    def _invoke(self, model: str, credentials: dict[str, Any], query: str, docs: list[str],
                score_threshold: float | None = None, top_n: int | None = None,
                user: str | None = None) -> RerankResult:
        """Order ``docs`` by relevance to ``query``."""

    def invoke(self, model: str, credentials: dict[str, Any], query: str, docs: list[str],
               score_threshold: float | None = None, top_n: int | None = None,
               user: str | None = None) -> RerankResult:
        with self.timing_context():
            try:
                return self._invoke(model, credentials, query, docs, score_threshold, top_n, user)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc

    def _invoke_multimodal(self, model: str, credentials: dict[str, Any], query: MultiModalContent,
                           docs: list[MultiModalContent], score_threshold: float | None = None,
                           top_n: int | None = None, user: str | None = None) -> MultiModalRerankResult:
        raise NotImplementedError("this model does not rerank images: implement _invoke_multimodal")

    def invoke_multimodal(self, model: str, credentials: dict[str, Any], query: Any, docs: list[Any],
                          score_threshold: float | None = None, top_n: int | None = None,
                          user: str | None = None) -> MultiModalRerankResult:
        q = query if isinstance(query, MultiModalContent) else MultiModalContent.model_validate(query)
        d = [x if isinstance(x, MultiModalContent) else MultiModalContent.model_validate(x) for x in docs]
        with self.timing_context():
            try:
                return self._invoke_multimodal(model, credentials, q, d, score_threshold, top_n, user)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc


class TTSModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.TTS

    @abstractmethod
    def _invoke(self, model: str, tenant_id: str, credentials: dict[str, Any], content_text: str, voice: str,
                user: str | None = None) -> bytes | Iterable[bytes]:
        """Speak ``content_text``; return audio bytes or yield chunks."""

    def invoke(self, model: str, tenant_id: str, credentials: dict[str, Any], content_text: str, voice: str,
               user: str | None = None) -> Generator[bytes, None, None]:
        with self.timing_context():
            try:
                result = self._invoke(model, tenant_id, credentials, content_text, voice, user)
                if isinstance(result, bytes | bytearray | memoryview):
                    yield bytes(result)
                else:
                    yield from result
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc

    def get_tts_model_voices(self, model: str, credentials: dict[str, Any],
                             language: str | None = None) -> list[dict[str, Any]] | None:
        schema = self.get_model_schema(model, credentials)
        if schema is None or ModelPropertyKey.VOICES not in schema.model_properties:
            return None
        voices = schema.model_properties[ModelPropertyKey.VOICES]
        if language:
            voices = [v for v in voices if language in (v.get("language") or [])]
        return [{"name": v["name"], "value": v["mode"]} for v in voices]

    def get_tts_model_mime_type(self, model: str, credentials: dict[str, Any]) -> str | None:
        schema = self.get_model_schema(model, credentials)
        audio = schema.model_properties.get(ModelPropertyKey.AUDIO_TYPE) if schema else None
        return _MIME_TYPES.get(str(audio)) if audio else None


_MIME_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "aac": "audio/aac", "mp4": "audio/mp4"}


class Speech2TextModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.SPEECH2TEXT

    @abstractmethod
    def _invoke(self, model: str, credentials: dict[str, Any], file: IO[bytes], user: str | None = None) -> str:
        """Transcribe ``file``."""

    def invoke(self, model: str, credentials: dict[str, Any], file: IO[bytes], user: str | None = None) -> str:
        with self.timing_context():
            try:
                return self._invoke(model, credentials, file, user)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc


class ModerationModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.MODERATION

    @abstractmethod
    def _invoke(self, model: str, credentials: dict[str, Any], text: str, user: str | None = None) -> bool:
        """True when ``text`` breaks the rules."""

    def invoke(self, model: str, credentials: dict[str, Any], text: str, user: str | None = None) -> bool:
        with self.timing_context():
            try:
                return self._invoke(model, credentials, text, user)
            except Exception as exc:
                raise self._transform_invoke_error(exc) from exc
