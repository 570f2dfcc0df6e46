"""Endpoints through the daemon: set up per tenant, public traffic relayed byte for byte (binary, streaming,
path variables, headers, settings), management routes, and every refusal with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon_harness import DaemonProcess

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow

ENDPOINTS = {
    "endpoints/echo.yaml": 'path: "/echo/<kind>"\nmethod: "POST"\nextra:\n  python:\n    source: endpoints/echo.py\n',
    "endpoints/echo.py": '''
import json
from werkzeug import Response
from plugdock.sdk import Endpoint


class Echo(Endpoint):
    def _invoke(self, r, values, settings):
        if values["kind"] == "binary":
            return Response(r.get_data(), status=201, content_type="application/octet-stream")
        if values["kind"] == "stream":
            def body():
                for i in range(3):
                    yield f"chunk{i};"
            return Response(body(), status=200, content_type="text/plain")
        info = {"hook": r.headers.get("Dify-Hook-Id"), "forwarded": r.headers.get("X-Forwarded-For"),
                "custom": r.headers.get("X-Custom"), "query": r.args.get("q"), "greeting": settings.get("greeting"),
                "path": r.path}
        return Response(json.dumps(info), status=200, content_type="application/json")
''',
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    root = make_plugin(tmp_path_factory.mktemp("p") / "hooks", kind="extension", name="hooks")
    for rel, text in ENDPOINTS.items():
        (root / rel).write_text(text)
    group = root / "group" / "hooks.yaml"
    group.write_text(group.read_text().replace("  - endpoints/hello.yaml", "  - endpoints/hello.yaml\n"
                                                                           "  - endpoints/echo.yaml"))
    d.identifier = d.install(root)  # type: ignore[attr-defined]
    d.tool_identifier = d.install(EXAMPLES / "echo_tool")  # type: ignore[attr-defined]
    yield d
    d.stop()


def setup(d: DaemonProcess, identifier: str, settings: dict | None = None) -> dict:
    response = d.client.post("/plugin/t1/endpoint/setup", json={
        "user_id": "u1", "plugin_unique_identifier": identifier, "settings": settings or {"greeting": "Hi"},
        "name": "main"})
    assert d.data(response) is True
    listing = d.data(d.client.get("/plugin/t1/endpoint/list"))
    return listing[-1]


def test_relay_is_byte_exact_and_streams(daemon: DaemonProcess) -> None:
    endpoint = setup(daemon, daemon.identifier)  # type: ignore[attr-defined]
    # no url without PLUGDOCK_PUBLIC_URL: Dify renders its ENDPOINT_URL_TEMPLATE (tests/test_dify_routes.py)
    assert "url" not in endpoint and endpoint["enabled"] is True
    public = httpx.Client(base_url=f"{daemon.url}/e/{endpoint['hook_id']}", timeout=30)
    payload = bytes(range(256)) * 40
    binary = public.post("/echo/binary", content=payload)
    assert (binary.status_code, binary.content) == (201, payload)
    assert binary.headers["content-type"] == "application/octet-stream"
    stream = public.post("/echo/stream")
    assert stream.text == "chunk0;chunk1;chunk2;"
    info = public.post("/echo/info?q=42", headers={"X-Forwarded-For": "1.2.3.4", "X-Custom": "yes"}).json()
    assert info == {"hook": endpoint["hook_id"], "forwarded": None, "custom": "yes", "query": "42",
                    "greeting": "Hi", "path": "/echo/info"}
    hello = public.get("/hello", params={"name": "Dee"})
    assert hello.text == "Hi, Dee!"


def test_management_routes(daemon: DaemonProcess) -> None:
    endpoint = setup(daemon, daemon.identifier, {"greeting": "Yo"})  # type: ignore[attr-defined]
    hook = f"{daemon.url}/e/{endpoint['hook_id']}"
    assert httpx.get(f"{hook}/hello").text == "Yo, world!"
    daemon.data(daemon.client.post("/plugin/t1/endpoint/update", json={
        "endpoint_id": endpoint["id"], "settings": {"greeting": "Hey"}, "name": "renamed"}))
    assert httpx.get(f"{hook}/hello").text == "Hey, world!"
    daemon.data(daemon.client.post("/plugin/t1/endpoint/disable", json={"endpoint_id": endpoint["id"]}))
    disabled = httpx.get(f"{hook}/hello")
    assert disabled.status_code == 404 and "disabled" in disabled.json()["message"]
    daemon.data(daemon.client.post("/plugin/t1/endpoint/enable", json={"endpoint_id": endpoint["id"]}))
    assert httpx.get(f"{hook}/hello").status_code == 200
    by_plugin = daemon.data(daemon.client.get("/plugin/t1/endpoint/list/plugin",
                                              params={"plugin_id": "tester/hooks"}))
    assert any(e["name"] == "renamed" for e in by_plugin)
    daemon.data(daemon.client.post("/plugin/t1/endpoint/remove", json={"endpoint_id": endpoint["id"]}))
    assert httpx.get(f"{hook}/hello").status_code == 404
    assert daemon.data(daemon.client.get("/plugin/other/endpoint/list")) == []


def test_refusals(daemon: DaemonProcess) -> None:
    unknown = httpx.get(f"{daemon.url}/e/nope/hello")
    assert unknown.status_code == 404 and "endpoint not found" in unknown.json()["message"]
    denied = daemon.client.post("/plugin/t1/endpoint/setup", json={
        "plugin_unique_identifier": daemon.tool_identifier, "settings": {}})  # type: ignore[attr-defined]
    # management errors come with HTTP 200 and the reason in the envelope, as the official daemon sends them
    assert denied.status_code == 200 and denied.json()["code"] == -403 and "enable endpoint access" in denied.text
    assert json.loads(denied.json()["message"])["error_type"] == "PluginPermissionDeniedError"
    bad = daemon.client.post("/plugin/t1/endpoint/setup", json={
        "plugin_unique_identifier": daemon.identifier, "settings": {"greeting": 5}})  # type: ignore[attr-defined]
    assert bad.status_code == 200 and bad.json()["code"] == -400
    assert "setting greeting is not a string" in bad.json()["message"]
    endpoint = setup(daemon, daemon.identifier)  # type: ignore[attr-defined]
    big = httpx.post(f"{daemon.url}/e/{endpoint['hook_id']}/echo/binary", content=b"x" * (10 * 1024 * 1024 + 10))
    assert big.status_code == 413 and "10485760-byte endpoint limit" in json.loads(big.json()["message"])["message"]
    other_tenant = daemon.client.post("/plugin/t2/endpoint/remove", json={"endpoint_id": endpoint["id"]})
    assert other_tenant.status_code == 200 and "record not found" in other_tenant.json()["message"]
    assert httpx.post(f"{daemon.url}/e/{endpoint['hook_id']}/echo/binary", content=b"x").status_code == 201
