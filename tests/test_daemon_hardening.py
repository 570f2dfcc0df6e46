"""API hardening against a real daemon: every route but health and public endpoints needs the key, bodies are
capped even when chunked, tenants never see or touch each other's plugins, and no secret reaches a log
line or an error message."""

from __future__ import annotations

import json
import re
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from daemon_harness import KEY, DaemonProcess
from plugdock.daemon.http.app import create_app
from plugdock.daemon.settings import load_settings

EXAMPLES = Path(__file__).parent.parent / "examples"
INNER_KEY = "inner-api-key-never-logged"
DB_PASSWORD = "db-password-never-logged"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """On PostgreSQL (trust auth accepts any password), so the URL carries a password that must never show."""
    name = f"plugdock_hardening_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    home = tmp_path_factory.mktemp("hardening") / "home"
    d = DaemonProcess(home, MAX_PLUGIN_PACKAGE_SIZE="200000", DIFY_INNER_API_KEY=INNER_KEY, PLUGDOCK_BODY_TIMEOUT="3",
                      DB_URL=f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:5432/{name}").start()
    try:
        yield d
    finally:
        d.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _flat(routes: list[Any]) -> list[Any]:
    """Routes with the routers the app includes opened up (FastAPI keeps them as included-router entries)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_flat(list(inner.routes)) if inner is not None else [route])
    return out


def every_route() -> list[tuple[str, str]]:
    """(method, concrete path) for every route the daemon's app declares."""
    app = create_app(load_settings(None, {"home": tempfile.mkdtemp()}, environ={}))
    routes = []
    for route in _flat(app.routes):
        for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD", "OPTIONS"}):
            path = re.sub(r"\{route:path\}", "tool/invoke", route.path)  # type: ignore[attr-defined]
            path = re.sub(r"\{tenant_id\}", "t1", path)
            routes.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return routes


def test_every_route_but_health_and_public_endpoints_needs_the_key(daemon: DaemonProcess) -> None:
    routes = every_route()
    assert len(routes) > 35
    checked = 0
    for method, path in routes:
        if path == "/health/check" or path.startswith("/e/"):
            continue
        if path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
            # a browser loads the API's documentation with no key; its Authorize sends the key to each call
            assert httpx.request(method, daemon.url + path, timeout=30).status_code == 200
            continue
        for headers in ({}, {"X-Api-Key": "wrong"}, {"X-Api-Key": KEY[:-1]}):
            response = httpx.request(method, daemon.url + path, headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == -401
            assert "wrong" not in response.text and KEY not in response.text
        checked += 1
    assert checked >= 35
    assert httpx.get(daemon.url + "/health/check").status_code == 200
    assert httpx.get(daemon.url + "/e/nothing-here").status_code == 404  # public, and no such endpoint


def test_bodies_over_the_limit_are_refused_even_when_chunked(daemon: DaemonProcess) -> None:
    limit = 200000 + 1024 * 1024

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    chunked = daemon.client.post("/plugin/t1/dispatch/tool/invoke", content=chunks(),
                                 headers={"Content-Type": "application/json", "X-Plugin-ID": "a/b"})
    assert chunked.status_code == 413
    assert f"over the {limit}-byte limit (MAX_PLUGIN_PACKAGE_SIZE)" in json.loads(chunked.json()["message"])["message"]
    declared = daemon.client.post("/plugin/t1/management/install/upload/package", content=b"x" * (limit + 1))
    assert declared.status_code == 413
    package = daemon.client.post("/plugin/t1/management/install/upload/package",
                                 files={"dify_pkg": ("p.difypkg", b"x" * 300000)})
    # the package limit itself, named, in the envelope of an HTTP 200 as the official UploadPlugin answers
    assert package.status_code == 200 and package.json()["code"] == -400 and "200000" in package.text
    assert daemon.client.get("/health/check").status_code == 200  # the daemon carries on


def test_a_body_trickling_in_is_cut_at_the_deadline(daemon: DaemonProcess) -> None:
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=20) as sock:
        sock.sendall(b"POST /plugin/t1/dispatch/tool/invoke HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + KEY.encode()
                     + b"\r\nX-Plugin-ID: a/b\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\"")
        answer = sock.recv(65536).decode()
        while "PLUGDOCK_BODY_TIMEOUT" not in answer and (more := sock.recv(65536)):  # the body may come apart
            answer += more.decode()
    assert answer.startswith("HTTP/1.1 408")
    assert "did not arrive within 3 s" in answer and "PLUGDOCK_BODY_TIMEOUT" in answer
    assert daemon.client.get("/health/check").status_code == 200


def test_a_tenant_never_sees_or_touches_another_tenants_plugins(daemon: DaemonProcess) -> None:
    identifier = daemon.install(EXAMPLES / "echo_tool", tenant="t1")
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    installation = next(p for p in listing["list"] if p["plugin_unique_identifier"] == identifier)
    tasks = daemon.data(daemon.client.get("/plugin/t1/management/install/tasks"))

    other = daemon.data(daemon.client.get("/plugin/t2/management/list"))
    assert all(p["plugin_id"] != "plugdock/echo_tool" for p in other["list"])
    assert daemon.data(daemon.client.get("/plugin/t2/management/tools")) in ([], None)
    assert daemon.data(daemon.client.get("/plugin/t2/management/installation/ids")) in ([], None, {"ids": []}) \
        or identifier not in json.dumps(daemon.client.get("/plugin/t2/management/installation/ids").json())
    # (fetch/identifier and fetch/manifest answer about the content-addressed package store, shared by all
    # tenants as in the official daemon: they say a package is on the daemon, not that a tenant installed it)
    invoked = daemon.client.post("/plugin/t2/dispatch/tool/invoke", headers={"X-Plugin-ID": "plugdock/echo_tool"},
                                 json={"user_id": "u", "data": {"provider": "echo_tool", "tool": "echo_tool",
                                                                "credentials": {}, "tool_parameters": {"text": "x"}}})
    assert '"text": "x"' not in invoked.text and '"text":"x"' not in invoked.text
    assert "not installed" in invoked.text
    removed = daemon.client.post("/plugin/t2/management/uninstall", json={"plugin_installation_id": installation["id"]})
    assert removed.json()["code"] != 0
    if tasks:
        task_id = tasks[0]["id"]
        assert daemon.client.get(f"/plugin/t2/management/install/tasks/{task_id}").json()["code"] != 0
        daemon.client.post(f"/plugin/t2/management/install/tasks/{task_id}/delete")  # idempotent: no error...
        daemon.client.post("/plugin/t2/management/install/tasks/delete_all")
        assert daemon.data(daemon.client.get(f"/plugin/t1/management/install/tasks/{task_id}"))  # ...and no effect
    logs = daemon.client.get("/plugin/t2/management/logs", params={"plugin_id": "plugdock/echo_tool"})
    assert logs.json()["code"] != 0
    # and the owner still has it, working
    still = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    assert any(p["plugin_unique_identifier"] == identifier for p in still["list"])
    events = daemon.dispatch("tool/invoke", "plugdock/echo_tool", {"provider": "echo_tool", "tool": "echo_tool",
                                                                   "credentials": {}, "tool_parameters": {"text": "y"}})
    assert events[0]["data"]["message"]["text"] == "y"


def test_no_secret_in_logs_or_errors(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_tool", tenant="t1")
    daemon.client.post("/plugin/t1/management/credentials", json={"provider": "x", "credentials": {"api_key": "zz"}})
    httpx.get(daemon.url + "/plugin/t1/management/list", headers={"X-Api-Key": "guess"})
    logs = daemon.client.get("/plugin/t1/management/logs", params={"plugin_id": "plugdock/echo_tool"}).text
    daemon.stop()
    try:
        assert daemon.proc is not None and daemon.proc.stderr is not None
        stderr = daemon.proc.stderr.read().decode()
        for secret in (KEY, INNER_KEY, DB_PASSWORD):
            assert secret not in stderr, f"{secret} in the daemon's output"
            assert secret not in logs
        assert "***" in stderr  # the database URL is shown, masked
    finally:
        daemon.start()
