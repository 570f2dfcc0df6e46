"""Bundles: members from inside the bundle, a marketplace-style registry and a GitHub-style release server
(both real HTTP servers on loopback), installed with one task and one progress view."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import KEY, DaemonProcess
from plugdock.packaging.build import build_bundle, build_package

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow


class Registry:
    """Serves /api/v1/plugins/{org}/{name}/{version}/download and /{owner}/{repo}/releases/download/{v}/{f}."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("members")
    other = make_plugin(work / "other", name="other")
    reg = Registry({
        "/api/v1/plugins/plugdock/typed_calculator/0.0.1/download": build_package(EXAMPLES / "typed_calculator").data,
        "/acme/other/releases/download/0.0.1/other.difypkg": build_package(other).data,
    })
    yield reg
    reg.server.shutdown()


def make_bundle(tmp: Path, deps: str) -> Path:
    root = tmp / "bundle"
    shutil.copytree(EXAMPLES / "starter_bundle", root)
    (root / "_assets" / "echo.difypkg").write_bytes(build_package(EXAMPLES / "echo_tool").data)
    manifest = root / "manifest.yaml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("dependencies:")] + "dependencies:\n" + deps)
    return root


DEPS = """  - type: package
    value:
      path: echo.difypkg
  - type: marketplace
    value:
      marketplace_pattern: plugdock/typed_calculator:0.0.1
  - type: github
    value:
      repo_pattern: acme/other:0.0.1/other.difypkg
"""


def test_bundle_installs_every_member_in_one_task(registry: Registry, tmp_path: Path) -> None:
    bundle = tmp_path / "starter.difybndl"
    bundle.write_bytes(build_bundle(make_bundle(tmp_path, DEPS)))
    d = DaemonProcess(tmp_path / "home", MARKETPLACE_API_URL=registry.url, PLUGDOCK_GITHUB_URL=registry.url).start()
    try:
        decoded = d.data(d.client.post("/plugin/t1/management/install/upload/bundle",
                                       files={"dify_bundle": ("b.difybndl", bundle.read_bytes())}))
        assert [m["type"] for m in decoded] == ["package", "marketplace", "github"]
        assert decoded[0]["value"]["unique_identifier"].startswith("plugdock/echo_tool:0.0.1@")
        cli = subprocess.run([sys.executable, "-m", "plugdock", "install", str(bundle), "--daemon", d.url,
                              "--tenant", "t1"], env={**os.environ, "PLUGDOCK_KEY": KEY}, capture_output=True,
                             text=True, timeout=300, check=False)
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.count(": installed") == 3
        ids = d.data(d.client.get("/plugin/t1/management/installation/ids"))["plugin_ids"]
        assert ids == ["plugdock/echo_tool", "plugdock/typed_calculator", "tester/other"]
        listed = d.data(d.client.get("/plugin/t1/management/list"))["list"]
        # a source Dify's PluginInstallationSource accepts (github, marketplace, package, remote)
        assert {(p["source"], p["meta"]["bundle"]) for p in listed} == {("package", "starter_bundle")}
    finally:
        d.stop()


def test_unresolvable_members_are_named(registry: Registry, tmp_path: Path) -> None:
    deps = "  - type: marketplace\n    value:\n      marketplace_pattern: plugdock/missing:0.0.1\n"
    bundle = build_bundle(make_bundle(tmp_path, deps))
    ranged = build_bundle(make_bundle(tmp_path / "r", "  - type: marketplace\n    value:\n"
                                                      "      marketplace_pattern: plugdock/typed_calculator:^0.0.1\n"))
    d = DaemonProcess(tmp_path / "home", MARKETPLACE_API_URL=registry.url).start()
    try:
        missing = d.client.post("/plugin/t1/management/install/bundle", files={"dify_bundle": ("b", bundle)})
        assert missing.status_code == 200 and missing.json()["code"] == -400
        assert "plugdock/missing:0.0.1" in missing.json()["message"]
        assert "answered 404" in missing.json()["message"]
        not_exact = d.client.post("/plugin/t1/management/install/bundle", files={"dify_bundle": ("b", ranged)})
        assert not_exact.status_code == 200 and not_exact.json()["code"] == -400
        assert "only exact versions" in not_exact.json()["message"]
    finally:
        d.stop()
