"""HTTP requests in wire form (for endpoints and OAuth callbacks) and endpoint responses as chunks.

The daemon sends an endpoint request as the hex of its HTTP/1.1 bytes; the plugin answers with a
chunk carrying status and headers, then chunks carrying the hex of body bytes (streamed when the
response body is a generator).

Both sides split lines on CRLF only, never with ``str.splitlines`` (which also breaks at ``\\x85``,
``\\x1c`` and U+2028, so a header value could become a header of its own on the plugin's side).
"""

from __future__ import annotations

import binascii
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from werkzeug import Request

    from plugdock.runtime.registry import EndpointEntry, PluginRegistry
    from plugdock.sdk.session import Session


# ASCII control characters but tab: a header line holding one is not passed on as the sender meant it.
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def parse_request(raw: bytes) -> Request:
    """Build a werkzeug ``Request`` from the bytes of an HTTP/1.1 request.

    Lines end at CRLF (bare LF only when the whole head uses it, as the official SDK accepts); a line
    holding any other control character, or a header without a colon, is refused with ``ValueError``.
    Header names with ``_`` are dropped: WSGI would read ``X_Real_Ip`` as ``X-Real-Ip``."""
    from werkzeug import Request

    head, sep, body = raw.partition(b"\r\n\r\n")
    newline = "\r\n"
    if not sep and b"\r\n" not in raw:
        head, sep, body = raw.partition(b"\n\n")
        newline = "\n"
    lines = head.decode("latin-1").split(newline)
    if not lines or not lines[0]:
        raise ValueError("empty request")
    for line in lines:
        if CONTROL.search(line):
            raise ValueError(f"control character in request line or header {line[:80]!r}")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {lines[0][:80]!r}")
    method, target, protocol = parts
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        # a WSGI string: the path's bytes as latin-1, which werkzeug decodes as UTF-8
        "REQUEST_METHOD": method.upper(), "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1") or "/",
        "QUERY_STRING": query, "SERVER_PROTOCOL": protocol, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
    }
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(" \t"):
            raise ValueError(f"bad header line {line[:80]!r}")
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        value = value.strip(" \t")  # str.strip() would also eat \x85 and \xa0, bytes of UTF-8 text
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key == "CONTENT_LENGTH":
            continue
        elif key == "HOST":
            environ["HTTP_HOST"] = value
            host, _, port = value.partition(":")
            environ["SERVER_NAME"], environ["SERVER_PORT"] = host, port or "80"
        else:
            existing = environ.get(f"HTTP_{key}")
            environ[f"HTTP_{key}"] = f"{existing}, {value}" if existing else value
    return Request(environ)


def serialize_request(method: str, path: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
                      body: bytes) -> bytes:
    """HTTP/1.1 bytes of a request, with Content-Length set (no chunking), as the daemon writes them.

    Text is latin-1 (one character per byte). A target holding spaces or anything outside ASCII, or a
    header holding a control character, is refused with ``ValueError``: encode the path first."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    if not path or any(c <= " " or c > "~" for c in path):
        raise ValueError(f"request target {path[:80]!r} must be percent-encoded ASCII without spaces")
    for name, value in pairs:
        if not name or CONTROL.search(name) or CONTROL.search(value) or ":" in name or " " in name:
            raise ValueError(f"header {name[:80]!r} holds a control character, a colon or a space")
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in pairs if k.lower() not in ("content-length", "transfer-encoding")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def route_endpoint(registry: PluginRegistry, request: Request) -> tuple[EndpointEntry, dict[str, Any]]:
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import Map, Rule

    rules = Map([Rule(e.path, methods=[e.method], endpoint=index) for index, e in enumerate(registry.endpoints)])
    try:
        index, values = rules.bind_to_environ(request.environ).match()
    except (NotFound, MethodNotAllowed) as exc:
        raise ValueError(f"no endpoint for {request.method} {request.path}") from exc
    return registry.endpoints[index], dict(values)


def _hex(chunk: Any) -> str:
    data = chunk if isinstance(chunk, bytes | bytearray | memoryview) else str(chunk).encode("utf-8")
    return binascii.hexlify(data).decode()


def endpoint_response_chunks(
    session: Session,
    registry: PluginRegistry,
    request: Request,
    router: Callable[[PluginRegistry, Request], tuple[EndpointEntry, dict[str, Any]]],
    settings: Mapping[str, Any],
) -> Iterator[dict[str, Any]]:
    from werkzeug import Response

    try:
        entry, values = router(registry, request)
        response = entry.endpoint_cls(session).invoke(request, values, settings)
        if not isinstance(response, Response):
            raise TypeError(f"endpoint {entry.path} returned {type(response).__name__}, not a werkzeug Response")
    except ValueError as exc:
        response = Response(str(exc), status=404)
    except Exception as exc:
        response = Response(f"Internal Server Error: {exc!s}", status=500)
    head = {"status": response.status_code, "headers": dict(response.headers.items())}
    if response.is_streamed:
        yield head
        for chunk in response.response:
            yield {"result": _hex(chunk)}
    else:
        yield {**head, "result": _hex(response.get_data())}
