"""A small OpenAI-compatible chat-completions server on loopback, standing in for a remote LLM API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small chunked writes would otherwise wait ~40 ms for a delayed ACK
    chunks = 5

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found"}})
            return
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return
        question = body["messages"][-1]["content"]
        words = [f"{question}:{i}" for i in range(int(body.get("n_chunks", self.chunks)))]
        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": " ".join(words)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)},
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(data: str) -> None:
            raw = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))

        for i, word in enumerate(words):
            send(
                json.dumps(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "delta": {"content": (" " if i else "") + word}, "finish_reason": None}
                        ],
                    }
                )
            )
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 100 streams may connect at once


def serve_forever(port: int) -> None:
    """Serve on ``port`` until killed (the benchmarks run the API in a process of its own)."""
    _Server(("127.0.0.1", port), _Handler).serve_forever()


class FakeOpenAI:
    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


OPENAI_LLM = """
import json
from collections.abc import Generator

import httpx

from plugdock.sdk.model import (AIModelEntity, AssistantPromptMessage, FetchFrom, I18nObject, InvokeAuthorizationError,
                                InvokeBadRequestError, InvokeConnectionError, LargeLanguageModel, LLMResult,
                                LLMResultChunk, LLMResultChunkDelta, LLMUsage, ModelPropertyKey, ModelType)


# One client for the process, as a real provider keeps one: a new httpx client builds an SSL context
# (milliseconds) on every call, which would be measured as if it were the daemon's overhead.
CLIENT = httpx.Client(timeout=30)


class HttpStatusError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AuthError(HttpStatusError):
    pass


class OpenAICompatible(LargeLanguageModel):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=True,
                user=None):
        body = {"model": model, "stream": stream, "messages": [
            {"role": m.role.value, "content": m.get_text_content()} for m in prompt_messages], **model_parameters}
        headers = {"Authorization": f"Bearer {credentials.get('api_key', '')}"}
        url = credentials["endpoint_url"].rstrip("/") + "/chat/completions"
        if not stream:
            response = CLIENT.post(url, json=body, headers=headers)
            self._check(response)
            text = response.json()["choices"][0]["message"]["content"]
            return LLMResult(model=model, message=AssistantPromptMessage(content=text), usage=LLMUsage.empty_usage())
        return self._stream(url, body, headers, model)

    def _stream(self, url, body, headers, model) -> Generator[LLMResultChunk, None, None]:
        with CLIENT.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                self._check(response)
            index = 0
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                yield LLMResultChunk(model=model, delta=LLMResultChunkDelta(
                    index=index, message=AssistantPromptMessage(content=delta)))
                index += 1

    @staticmethod
    def _check(response) -> None:
        if response.status_code == 401:
            raise AuthError(401, response.json()["error"]["message"])
        if response.status_code >= 400:
            raise HttpStatusError(response.status_code, response.text)

    def get_num_tokens(self, model, credentials, prompt_messages, tools=None) -> int:
        return sum(len(m.get_text_content().split()) for m in prompt_messages)

    def validate_credentials(self, model, credentials) -> None:
        pass

    def get_customizable_model_schema(self, model, credentials):
        return AIModelEntity(model=model, label=I18nObject(en_US=model), model_type=ModelType.LLM,
                             fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
                             model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 4096})

    @property
    def _invoke_error_mapping(self):
        return {InvokeAuthorizationError: [AuthError], InvokeConnectionError: [httpx.ConnectError],
                InvokeBadRequestError: [HttpStatusError]}
"""
