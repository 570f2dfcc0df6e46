"""The host application's inner API, called as the official daemon calls the Dify API server.

``POST {DIFY_INNER_API_URL}/inner/api/<path>`` with the header ``X-Inner-Api-Key`` and a JSON body (the
plugin's request plus ``tenant_id``, ``user_id`` and ``type``; official ``calldify/http_request.go``). Streamed
answers come in Dify's length-prefixed frames (``api/libs/helper.py`` ``length_prefixed_response``:
``struct.pack("<BBHI", 0x0F, 0, 10, len(data))``, six reserved bytes, then ``data``), each frame and every
plain answer being ``{"data": ..., "error": ""}``; a non-empty ``error`` is the call's failure.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from plugdock.errors import PlugdockError

if TYPE_CHECKING:
    from plugdock.daemon.settings import Settings

MAX_FRAME = 30 * 1024 * 1024


class HostError(PlugdockError):
    code = "invoke_dify_error"


def parse_frames(buffer: bytearray) -> list[dict[str, Any]]:
    """Complete length-prefixed frames from the host's stream (0x0F 0x00, uint16 header length, header with
    uint32 payload length, payload JSON); consumed bytes are removed from ``buffer``."""
    out = []
    while len(buffer) >= 4:
        if buffer[0] != 0x0F:
            raise HostError("the host sent a malformed stream frame (bad magic byte)")
        header_len = struct.unpack_from("<H", buffer, 2)[0]
        if header_len < 4:
            raise HostError(f"the host sent a stream frame with a {header_len}-byte header (at least 4 expected)")
        if len(buffer) < 4 + header_len:
            break
        payload_len = struct.unpack_from("<I", buffer, 4)[0]
        if payload_len > MAX_FRAME:
            raise HostError(f"the host sent a frame of {payload_len} bytes, over the 30 MiB limit")
        end = 4 + header_len + payload_len
        if len(buffer) < end:
            break
        out.append(json.loads(bytes(buffer[4 + header_len : end])))
        del buffer[:end]
    return out


class InnerApi:
    """One host application (``DIFY_INNER_API_URL``/``DIFY_INNER_API_KEY``); ``configured`` says if there is one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.inner_api_url)

    def _target(self, path: str, deadline: float | None) -> tuple[str, dict[str, str], Any]:
        import httpx

        url = self.settings.inner_api_url.rstrip("/") + "/inner/api/" + path.lstrip("/")
        read = 60.0 if deadline is None else max(1.0, deadline - time.monotonic())
        timeout = httpx.Timeout(connect=5.0, read=read, write=5.0, pool=5.0)
        return url, {"X-Inner-Api-Key": self.settings.inner_api_key}, timeout

    async def call(self, path: str, body: dict[str, Any], deadline: float | None = None) -> Any:
        """A plain JSON answer's ``data`` (the host's ``error``, if any, raised)."""
        import httpx

        url, headers, timeout = self._target(path, deadline)
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._check_status(response.status_code, response.text, url)
        try:
            answer = response.json()
        except ValueError:
            raise HostError(f"the host application answered {url} with no JSON: {response.text[:300]}") from None
        if not isinstance(answer, dict):
            raise HostError(f"the host application answered {url} with {type(answer).__name__}, not an object")
        if answer.get("error"):
            raise HostError(str(answer["error"]))
        return answer.get("data")

    async def stream(self, path: str, body: dict[str, Any], deadline: float | None = None) -> AsyncIterator[Any]:
        """Each length-prefixed frame's ``data``, as it arrives; a frame's ``error`` ends the stream raised."""
        import httpx

        url, headers, timeout = self._target(path, deadline)
        try:
            async with httpx.AsyncClient(timeout=timeout) as client, \
                    client.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code != 200:
                    self._check_status(response.status_code, (await response.aread()).decode(errors="replace"), url)
                buffer = bytearray()
                async for chunk in response.aiter_bytes():
                    buffer.extend(chunk)
                    for frame in parse_frames(buffer):
                        if frame.get("error"):
                            raise HostError(str(frame["error"]))
                        yield frame.get("data")
                if buffer:
                    raise HostError(f"the host's stream from {url} ended inside a frame ({len(buffer)} bytes left)")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> HostError:
        return HostError(f"the host application at {self.settings.inner_api_url} did not answer: "
                         f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _check_status(status: int, text: str, url: str) -> None:
        if status != 200:
            raise HostError(f"the host application answered {status} to {url}: {text[:300]}")
