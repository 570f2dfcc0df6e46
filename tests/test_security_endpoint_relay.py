"""Issue 12 item 13: the public endpoint relay rebuilds the request so that it means to the plugin what it
meant to the daemon. Attacks through a real daemon and an extension plugin that echoes what it received:
line-break characters inside header values (sent as raw bytes, which httpx refuses to send), client-sent
``Dify-Hook-*`` and underscore spellings of stripped headers, and paths with spaces, ``%``-escapes and
non-Latin-1 text. Also the wire format itself: the plugin side splits on CRLF only."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import h11
import httpx
import pytest

from daemon_harness import DaemonProcess
from plugdock.daemon.http.endpoints import BadHeader, relayed_headers, request_target
from plugdock.runtime.http_wire import parse_request, serialize_request

from conftest import make_plugin

pytestmark = pytest.mark.slow

ECHO_YAML = 'path: "/echo/<path:rest>"\nmethod: "GET"\nextra:\n  python:\n    source: endpoints/echo.py\n'
ECHO_PY = '''
import json
from werkzeug import Response
from plugdock.sdk import Endpoint


class Echo(Endpoint):
    def _invoke(self, r, values, settings):
        info = {"path": r.path, "rest": values["rest"], "query": r.query_string.decode("latin-1"),
                "args": r.args.to_dict(flat=False), "headers": [[k, v] for k, v in r.headers.items()],
                "environ": sorted(k for k in r.environ if k.startswith("HTTP_"))}
        return Response(json.dumps(info), status=200, content_type="application/json")
'''


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    root = make_plugin(tmp_path_factory.mktemp("p") / "relay", kind="extension", name="relay")
    (root / "endpoints" / "echo.yaml").write_text(ECHO_YAML)
    (root / "endpoints" / "echo.py").write_text(ECHO_PY)
    group = root / "group" / "relay.yaml"
    group.write_text(group.read_text().replace("  - endpoints/hello.yaml",
                                               "  - endpoints/hello.yaml\n  - endpoints/echo.yaml"))
    identifier = d.install(root)
    assert d.data(d.client.post("/plugin/t1/endpoint/setup", json={
        "user_id": "u1", "plugin_unique_identifier": identifier, "settings": {}, "name": "relay"})) is True
    d.hook = d.data(d.client.get("/plugin/t1/endpoint/list"))[-1]["hook_id"]  # type: ignore[attr-defined]
    yield d
    d.stop()


def hook(d: DaemonProcess) -> str:
    return str(d.hook)  # type: ignore[attr-defined]


def raw_get(d: DaemonProcess, target: bytes, headers: list[bytes]) -> tuple[int, bytes]:
    """Send one request as the exact bytes given (httpx would refuse these) and read the answer to its end."""
    head = b"GET " + target + f" HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\nConnection: close\r\n".encode() + b"".join(
        h + b"\r\n" for h in headers) + b"\r\n"
    with socket.create_connection(("127.0.0.1", d.port), timeout=60) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return read_response(answer)


def read_response(answer: bytes) -> tuple[int, bytes]:
    """Status and body (de-chunked) of an HTTP/1.1 answer, parsed by h11 as a client would."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(answer)
    client.receive_data(b"")
    status, body = 0, b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage | h11.ConnectionClosed):
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
    return status, body


def echoed(d: DaemonProcess, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(f"{d.url}/e/{hook(d)}{path}", timeout=60, **kwargs)
    assert response.status_code == 200, response.text
    return dict(response.json())


def headers_named(info: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in info["headers"] if k.lower() == name.lower()]


def error_message(body: bytes) -> str:
    return str(json.loads(json.loads(body)["message"])["message"])


# -- headers ---------------------------------------------------------------------------------------------

LINE_BREAKERS = {  # each splits a line for str.splitlines(), or is a control byte, once the value is decoded
    "NEL as a latin-1 byte": b"\x85",
    "NEL in UTF-8": "\x85".encode(),
    "LINE SEPARATOR in UTF-8": "\u2028".encode(),
    "PARAGRAPH SEPARATOR in UTF-8": "\u2029".encode(),
    "file separator": b"\x1c",
    "group separator": b"\x1d",
    "record separator": b"\x1e",
    "start of heading": b"\x01",
    "escape": b"\x1b",
    "delete": b"\x7f",
}


@pytest.mark.parametrize("breaker", LINE_BREAKERS.values(), ids=LINE_BREAKERS.keys())
def test_a_line_breaking_character_in_a_header_value_is_refused_naming_the_header(
        daemon: DaemonProcess, breaker: bytes) -> None:
    """Found by the review: ``X-Test: a\\x85X-Real-Ip: 6.6.6.6`` became a second, stripped header."""
    status, body = raw_get(daemon, f"/e/{hook(daemon)}/echo/x".encode(),
                           [b"X-Test: a" + breaker + b"X-Real-Ip: 6.6.6.6"])
    assert status == 400
    message = error_message(body)
    assert message.startswith("header x-test holds the control character ") and "may not contain CR, LF, NUL" in \
        message


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rX-Real-Ip: 6.6.6.6", b"a\x0bb", b"a\x0cb"],
                         ids=["NUL", "bare CR", "vertical tab", "form feed"])
def test_bytes_the_http_parser_refuses_never_reach_the_plugin(daemon: DaemonProcess, value: bytes) -> None:
    status, _ = raw_get(daemon, f"/e/{hook(daemon)}/echo/x".encode(), [b"X-Test: " + value])
    assert status == 400
    assert echoed(daemon, "/echo/after")["rest"] == "after"  # and the daemon carries on


def test_text_in_utf8_and_tabs_pass_unchanged(daemon: DaemonProcess) -> None:
    """UTF-8 holds bytes such as 0x85 (in "Å") that are NEL in latin-1: valid UTF-8 text is not refused, and
    reaches the plugin byte for byte (as latin-1 text, as WSGI passes header values)."""
    text = "Åsa … 5 € \u00e9t\u00e9\tand a tab"
    status, body = raw_get(daemon, f"/e/{hook(daemon)}/echo/x".encode(), [b"X-Name: " + text.encode()])
    assert status == 200, body
    [received] = headers_named(json.loads(body), "X-Name")
    assert received.encode("latin-1").decode() == text


def test_a_header_name_that_is_not_a_token_is_refused() -> None:
    """h11 refuses these before the relay sees them; the relay checks names as well, for any other server."""
    with pytest.raises(BadHeader, match=r"header name 'x\\ntest' is not an HTTP token"):
        relayed_headers([(b"x\ntest", b"v")])


def test_client_sent_hook_headers_are_replaced_by_the_daemons(daemon: DaemonProcess) -> None:
    """Found by the review: a client's Dify-Hook-Url was kept, and Dify-Hook-Id only prepended."""
    info = echoed(daemon, "/echo/x", headers=[
        ("Dify-Hook-Url", "https://evil.example/e/x"), ("DIFY-HOOK-ID", "forged"), ("dify-hook-id", "forged2"),
        ("Dify_Hook_Url", "https://evil.example/underscore")])
    assert headers_named(info, "Dify-Hook-Id") == [hook(daemon)]
    assert headers_named(info, "Dify-Hook-Url") == [f"{daemon.url}/e/{hook(daemon)}/echo/x"]
    assert not [v for _, v in info["headers"] if "evil" in v or "forged" in v]


def test_proxy_headers_are_stripped_in_every_spelling(daemon: DaemonProcess) -> None:
    info = echoed(daemon, "/echo/x", headers=[
        ("X-Real-Ip", "6.6.6.6"), ("X_Real_Ip", "6.6.6.7"), ("x-forwarded-for", "6.6.6.8"),
        ("X_Forwarded_For", "6.6.6.9"), ("X-Original-Url", "/admin"), ("X-Kept", "yes")])
    assert headers_named(info, "X-Kept") == ["yes"]
    assert not [v for _, v in info["headers"] if v.startswith("6.6.6.") or v == "/admin"]
    assert not {"HTTP_X_REAL_IP", "HTTP_X_FORWARDED_FOR", "HTTP_X_ORIGINAL_URL"} & set(info["environ"])


def test_repeated_headers_are_all_passed_on(daemon: DaemonProcess) -> None:
    info = echoed(daemon, "/echo/x", headers=[("X-Multi", "a"), ("X-Multi", "b")])
    assert headers_named(info, "X-Multi") == ["a, b"]


# -- the request target ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "path"), [
    ("/echo/a%20b", "/echo/a b"),  # was a 500: the space split the request line
    ("/echo/caf%C3%A9", "/echo/café"),
    ("/echo/%E6%97%A5%E6%9C%AC/%F0%9F%94%91", "/echo/日本/🔑"),  # was an unhandled 500: not latin-1
    ("/echo/100%25", "/echo/100%"),
    ("/echo/what%3F", "/echo/what?"),
    ("/echo/a%23b", "/echo/a#b"),
    ("/echo/semi;colon:at@plus+", "/echo/semi;colon:at@plus+"),
])
def test_paths_reach_the_plugin_as_they_were_meant(daemon: DaemonProcess, sent: str, path: str) -> None:
    status, body = raw_get(daemon, f"/e/{hook(daemon)}{sent}".encode(), [])
    assert status == 200, body
    info = json.loads(body)
    assert (info["path"], info["rest"], info["query"]) == (path, path.removeprefix("/echo/"), "")
    assert headers_named(info, "Dify-Hook-Url") == [f"{daemon.url}/e/{hook(daemon)}{sent}"]  # encoded again


def test_query_strings_are_kept(daemon: DaemonProcess) -> None:
    status, body = raw_get(daemon, f"/e/{hook(daemon)}/echo/q?q=a%20b&x=1&x=2&e=caf%C3%A9&plus=1+1".encode(), [])
    assert status == 200, body
    info = json.loads(body)
    assert info["query"] == "q=a%20b&x=1&x=2&e=caf%C3%A9&plus=1+1"
    assert info["args"] == {"q": ["a b"], "x": ["1", "2"], "e": ["café"], "plus": ["1 1"]}


def test_httpx_paths_with_text_arrive_decoded(daemon: DaemonProcess) -> None:
    info = echoed(daemon, "/echo/café au lait", params={"name": "Zoë"})
    assert (info["path"], info["args"]) == ("/echo/café au lait", {"name": ["Zoë"]})


# -- the wire format, on both sides ----------------------------------------------------------------------

def test_the_daemons_request_is_valid_http_for_h11() -> None:
    """The official SDK parses the relayed bytes with h11: what the relay writes must be accepted whole."""
    headers = [("Host", "example.com"), *relayed_headers([(b"x-name", "Åsa".encode()), (b"x-real-ip", b"1.1.1.1")])]
    raw = serialize_request("GET", request_target("日本 x/%", b"q=a b&r=\xe9"), headers, b"body")
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(raw)
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    assert event.target == b"/%E6%97%A5%E6%9C%AC%20x/%25?q=a%20b&r=%E9"
    assert dict(event.headers)[b"x-name"] == "Åsa".encode() and b"x-real-ip" not in dict(event.headers)


def test_the_plugin_side_splits_lines_on_crlf_only() -> None:
    request = parse_request(b"GET /p HTTP/1.1\r\nHost: h\r\nX-Test: a\x85X-Real-Ip: 6.6.6.6\r\n\r\n")
    assert request.headers.get("X-Test") == "a\x85X-Real-Ip: 6.6.6.6" and "X-Real-Ip" not in request.headers
    with pytest.raises(ValueError, match="control character"):
        parse_request(b"GET /p HTTP/1.1\r\nX-Test: a\nX-Real-Ip: 6.6.6.6\r\n\r\n")
    with pytest.raises(ValueError, match="bad header line"):
        parse_request(b"GET /p HTTP/1.1\r\nno colon here\r\n\r\n")
    underscore = parse_request(b"GET /p HTTP/1.1\r\nX_Real_Ip: 6.6.6.6\r\n\r\n")
    assert "HTTP_X_REAL_IP" not in underscore.environ
    utf8 = parse_request(b"GET /caf%C3%A9/%E6%97%A5 HTTP/1.1\r\nX-Name: \xc3\x85\r\n\r\n")
    assert utf8.path == "/café/日" and utf8.headers["X-Name"].encode("latin-1").decode() == "Å"


def test_serialize_refuses_what_would_change_meaning() -> None:
    with pytest.raises(ValueError, match="must be percent-encoded ASCII"):
        serialize_request("GET", "/a b", {}, b"")
    with pytest.raises(ValueError, match="must be percent-encoded ASCII"):
        serialize_request("GET", "/café", {}, b"")
    with pytest.raises(ValueError, match="holds a control character"):
        serialize_request("GET", "/a", {"X-Test": "a\r\nX-Real-Ip: 1"}, b"")
