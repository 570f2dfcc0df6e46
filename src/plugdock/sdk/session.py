"""The session a handler runs in, and the clients for calling back into the host (reverse invocation).

Every client sends an ``invoke`` message on the plugin's transport and reads the answers for its own
request id; the transport is whatever the plugin runs on (stdio, TCP, HTTP, or the in-process test
client), behind the small ``BackwardsChannel`` interface.
"""

from __future__ import annotations

import binascii
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Any, Protocol

from plugdock.protocol.messages import InvokeType
from plugdock.sdk.messages import InvokeMessage, ToolInvokeMessage


class BackwardsChannel(Protocol):
    """Sends one reverse invocation and yields the ``data`` of each answer until the host says ``end``."""

    def invoke(self, session: Session, invoke_type: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


class BackwardsInvocationError(Exception):
    """The host refused or failed a reverse invocation; the message is the host's."""


class StorageInvocationError(Exception):
    pass


@dataclass
class InvokeCredentials:
    tool_credentials: dict[str, str] = field(default_factory=dict)

    def get_credential_id(self, provider: str) -> str | None:
        return self.tool_credentials.get(provider)


@dataclass
class SessionContext:
    credentials: InvokeCredentials = field(default_factory=InvokeCredentials)

    @classmethod
    def from_wire(cls, value: Mapping[str, Any] | None) -> SessionContext:
        creds = (value or {}).get("credentials") or {}
        return cls(credentials=InvokeCredentials(tool_credentials=dict(creds.get("tool_credentials") or {})))


class _NoChannel:
    def invoke(self, session: Session, invoke_type: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise BackwardsInvocationError("this session cannot call the host (no transport; is the tool run directly?)")


class Session:
    """Per-request context: ids from the host, and clients for models, tools, apps, nodes, storage, files."""

    def __init__(
        self,
        session_id: str,
        channel: BackwardsChannel | None = None,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        app_id: str | None = None,
        endpoint_id: str | None = None,
        context: SessionContext | Mapping[str, Any] | None = None,
        max_invocation_timeout: int = 250,
    ) -> None:
        self.session_id = session_id
        self.channel: BackwardsChannel = channel or _NoChannel()
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.app_id = app_id
        self.endpoint_id = endpoint_id
        self.context = context if isinstance(context, SessionContext) else SessionContext.from_wire(context)
        self.max_invocation_timeout = max_invocation_timeout

    # The clients are made on first use: most requests never call back into the host.
    @cached_property
    def model(self) -> ModelInvocations:
        return ModelInvocations(self)

    @cached_property
    def tool(self) -> ToolInvocation:
        return ToolInvocation(self)

    @cached_property
    def app(self) -> AppInvocations:
        return AppInvocations(self)

    @cached_property
    def workflow_node(self) -> WorkflowNodeInvocations:
        return WorkflowNodeInvocations(self)

    @cached_property
    def storage(self) -> StorageInvocation:
        return StorageInvocation(self)

    @cached_property
    def file(self) -> FileInvocation:
        return FileInvocation(self)

    @cached_property
    def system(self) -> SystemInvocations:
        return SystemInvocations(self)

    @classmethod
    def empty_session(cls) -> Session:
        return cls(session_id="")

    def backwards_invoke(self, invoke_type: InvokeType | str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self.channel.invoke(self, str(invoke_type), request)


class BackwardsInvocation:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _invoke(self, invoke_type: InvokeType, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self.session.backwards_invoke(invoke_type, request)

    def _first(self, invoke_type: InvokeType, request: dict[str, Any], what: str) -> dict[str, Any]:
        for data in self._invoke(invoke_type, request):
            return data
        raise BackwardsInvocationError(f"no response from {what}")


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


class StorageInvocation(BackwardsInvocation):
    """The plugin's persistent key-value store (needs ``storage`` permission in the manifest)."""

    def set(self, key: str, val: bytes) -> None:
        data = self._first(InvokeType.STORAGE, {"opt": "set", "key": key, "value": binascii.hexlify(val).decode()},
                           "storage")
        if data.get("data") != "ok":
            raise StorageInvocationError(f"unexpected data: {data.get('data')}")

    def get(self, key: str) -> bytes:
        data = self._first(InvokeType.STORAGE, {"opt": "get", "key": key}, "storage")
        return binascii.unhexlify(data["data"])

    def delete(self, key: str) -> None:
        data = self._first(InvokeType.STORAGE, {"opt": "del", "key": key}, "storage")
        if data.get("data") != "ok":
            raise StorageInvocationError(f"unexpected data: {data.get('data')}")

    def exist(self, key: str) -> bool:
        return bool(self._first(InvokeType.STORAGE, {"opt": "exist", "key": key}, "storage")["data"])


class ToolInvocation(BackwardsInvocation):
    def invoke_builtin_tool(self, provider: str, tool_name: str,
                            parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        return self.invoke("builtin", provider, tool_name, parameters)

    def invoke_workflow_tool(self, provider: str, tool_name: str,
                             parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        return self.invoke("workflow", provider, tool_name, parameters)

    def invoke_api_tool(self, provider: str, tool_name: str,
                        parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        return self.invoke("api", provider, tool_name, parameters)

    def invoke(self, provider_type: Any, provider: str, tool_name: str, parameters: dict[str, Any],
               credential_id: str | None = None) -> Generator[ToolInvokeMessage, None, None]:
        kind = getattr(provider_type, "value", provider_type)
        payload: dict[str, Any] = {"tool_type": kind, "provider": provider, "tool": tool_name,
                                   "tool_parameters": parameters}
        if self.session.app_id:
            payload["app_id"] = self.session.app_id
        credential = credential_id or self.session.context.credentials.get_credential_id(provider)
        if credential:
            payload["credential_id"] = credential
        for data in self._invoke(InvokeType.TOOL, payload):
            yield ToolInvokeMessage(type=data["type"], message=_message_payload(data), meta=data.get("meta"))


def _message_payload(data: Mapping[str, Any]) -> Any:
    message = data.get("message")
    kind = data.get("type")
    if not isinstance(message, Mapping):
        return message
    if kind in ("text", "link", "image", "image_link", "binary_link"):
        return InvokeMessage.TextMessage(text=message.get("text", ""))
    if kind == "json":
        return InvokeMessage.JsonMessage(json_object=message.get("json_object") or {})
    if kind == "variable":
        return InvokeMessage.VariableMessage(**{k: message[k] for k in ("variable_name", "variable_value", "stream")
                                                if k in message})
    return dict(message)


class ModelInvocations:
    def __init__(self, session: Session) -> None:
        self.llm = LLMInvocation(session)
        self.llm_structured_output = LLMStructuredOutputInvocation(session)
        self.text_embedding = TextEmbeddingInvocation(session)
        self.rerank = RerankInvocation(session)
        self.tts = TTSInvocation(session)
        self.speech2text = Speech2TextInvocation(session)
        self.moderation = ModerationInvocation(session)
        self.summary = SummaryInvocation(session)


class LLMInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, prompt_messages: list[Any], tools: list[Any] | None = None,
               stop: list[str] | None = None, stream: bool = True) -> Any:
        from plugdock.sdk.model.entities import LLMModelConfig, LLMResult, LLMResultChunk, LLMUsage
        from plugdock.sdk.model.message import AssistantPromptMessage

        config = model_config if isinstance(model_config, LLMModelConfig) else LLMModelConfig(**dict(model_config))
        data = {**config.model_dump(mode="json"), "prompt_messages": [_dump(m) for m in prompt_messages],
                "tools": [_dump(t) for t in tools] if tools else None, "stop": stop, "stream": stream}
        chunks = (LLMResultChunk.model_validate(d) for d in self._invoke(InvokeType.LLM, data))
        if stream:
            return chunks
        text, usage = "", LLMUsage.empty_usage()
        tool_calls: list[AssistantPromptMessage.ToolCall] = []
        for chunk in chunks:
            if isinstance(chunk.delta.message.content, str):
                text += chunk.delta.message.content
            tool_calls = chunk.delta.message.tool_calls or tool_calls
            usage = chunk.delta.usage or usage
        return LLMResult(model=config.model, message=AssistantPromptMessage(content=text, tool_calls=tool_calls),
                         usage=usage)


class LLMStructuredOutputInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, prompt_messages: list[Any], json_schema: Mapping[str, Any],
               tools: list[Any] | None = None, stop: list[str] | None = None, stream: bool = True) -> Any:
        from plugdock.sdk.model.entities import LLMModelConfig, LLMResultChunkWithStructuredOutput

        config = model_config if isinstance(model_config, LLMModelConfig) else LLMModelConfig(**dict(model_config))
        data = {**config.model_dump(mode="json"), "prompt_messages": [_dump(m) for m in prompt_messages],
                "json_schema": dict(json_schema), "tools": [_dump(t) for t in tools] if tools else None,
                "stop": stop, "stream": stream}
        return (LLMResultChunkWithStructuredOutput.model_validate(d)
                for d in self._invoke(InvokeType.LLM_STRUCTURED_OUTPUT, data))


class TextEmbeddingInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, texts: list[str], input_type: Any = "query") -> Any:
        from plugdock.sdk.model.entities import TextEmbeddingResult

        data = {**_dump(model_config), "texts": texts, "input_type": getattr(input_type, "value", input_type)}
        return TextEmbeddingResult.model_validate(self._first(InvokeType.TEXT_EMBEDDING, data, "text embedding"))


class RerankInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, docs: list[str], query: str) -> Any:
        from plugdock.sdk.model.entities import RerankResult

        data = {**_dump(model_config), "docs": docs, "query": query}
        return RerankResult.model_validate(self._first(InvokeType.RERANK, data, "rerank"))


class TTSInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, content_text: str) -> Generator[bytes, None, None]:
        for data in self._invoke(InvokeType.TTS, {**_dump(model_config), "content_text": content_text}):
            yield binascii.unhexlify(data["result"])


class Speech2TextInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, file: IO[bytes]) -> str:
        data = {**_dump(model_config), "file": binascii.hexlify(file.read()).decode()}
        return str(self._first(InvokeType.SPEECH2TEXT, data, "speech2text")["result"])


class ModerationInvocation(BackwardsInvocation):
    def invoke(self, model_config: Any, text: str) -> bool:
        return bool(self._first(InvokeType.MODERATION, {**_dump(model_config), "text": text}, "moderation")["result"])


class SummaryInvocation(BackwardsInvocation):
    def invoke(self, text: str, instruction: str, min_summarize_length: int = 1024) -> str:
        if len(text) < min_summarize_length:
            return text
        data = self._first(InvokeType.SYSTEM_SUMMARY, {"text": text, "instruction": instruction}, "summary")
        return str(data["summary"])


class _AppInvocation(BackwardsInvocation):
    def _run(self, payload: dict[str, Any], response_mode: str) -> Any:
        answers = self._invoke(InvokeType.APP, payload)
        if response_mode == "streaming":
            return answers
        for data in answers:
            return data
        raise BackwardsInvocationError("no response from the app")


class ChatAppInvocation(_AppInvocation):
    def invoke(self, app_id: str, query: str, inputs: dict[str, Any], response_mode: str = "blocking",
               conversation_id: str | None = None, files: list[Any] | None = None, user: str | None = None) -> Any:
        return self._run({"app_id": app_id, "inputs": inputs, "query": query, "response_mode": response_mode,
                          "conversation_id": conversation_id, "files": files or [], "user": user}, response_mode)


class CompletionAppInvocation(_AppInvocation):
    def invoke(self, app_id: str, inputs: dict[str, Any], response_mode: str = "blocking",
               files: list[Any] | None = None, user: str | None = None) -> Any:
        return self._run({"app_id": app_id, "inputs": inputs, "response_mode": response_mode, "files": files or [],
                          "user": user}, response_mode)


class WorkflowAppInvocation(_AppInvocation):
    def invoke(self, app_id: str, inputs: dict[str, Any], response_mode: str = "blocking",
               files: list[Any] | None = None, user: str | None = None) -> Any:
        return self._run({"app_id": app_id, "inputs": inputs, "response_mode": response_mode, "files": files or [],
                          "user": user}, response_mode)


class AppInvocations:
    def __init__(self, session: Session) -> None:
        self.chat = ChatAppInvocation(session)
        self.completion = CompletionAppInvocation(session)
        self.workflow = WorkflowAppInvocation(session)
        self._session = session

    def fetch_app(self, app_id: str) -> Mapping[str, Any]:
        return BackwardsInvocation(self._session)._first(InvokeType.FETCH_APP, {"app_id": app_id}, "fetch app")


class WorkflowNodeInvocations:
    def __init__(self, session: Session) -> None:
        self.question_classifier = QuestionClassifierNodeInvocation(session)
        self.parameter_extractor = ParameterExtractorNodeInvocation(session)


class QuestionClassifierNodeInvocation(BackwardsInvocation):
    def invoke(self, classes: list[Any], model: Any, query: str, instruction: str = "") -> dict[str, Any]:
        payload = {"classes": [_dump(c) for c in classes], "model": _dump(model), "query": query,
                   "instruction": instruction}
        return self._first(InvokeType.NODE_QUESTION_CLASSIFIER, payload, "question classifier")


class ParameterExtractorNodeInvocation(BackwardsInvocation):
    def invoke(self, parameters: list[Any], model: Any, query: str, instruction: str = "") -> dict[str, Any]:
        payload = {"parameters": [_dump(p) for p in parameters], "model": _dump(model), "query": query,
                   "instruction": instruction}
        return self._first(InvokeType.NODE_PARAMETER_EXTRACTOR, payload, "parameter extractor")


@dataclass
class UploadFileResponse:
    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    type: str = "custom"
    preview_url: str | None = None


class FileInvocation(BackwardsInvocation):
    def upload(self, filename: str, content: bytes, mimetype: str) -> UploadFileResponse:
        """Ask the host for a signed upload URL, then post the file there."""
        data = self._first(InvokeType.UPLOAD_FILE, {"filename": filename, "mimetype": mimetype}, "file upload")
        url = data.get("url")
        if not url:
            raise BackwardsInvocationError("upload file failed, could not get signed url")
        import httpx

        response = httpx.post(url, files={"file": (filename, content, mimetype)}, timeout=30)
        if response.status_code != 201:
            raise BackwardsInvocationError(f"upload file failed, status code: {response.status_code}, "
                                           f"response: {response.text[:200]}")
        body = response.json()
        return UploadFileResponse(**{k: body[k] for k in UploadFileResponse.__dataclass_fields__ if k in body})


class SystemInvocations(BackwardsInvocation):
    """Information about the host; ``summary`` also reachable as ``session.model.summary``."""

    def summary(self, text: str, instruction: str) -> str:
        return SummaryInvocation(self.session).invoke(text, instruction, min_summarize_length=0)
