"""A real ``plugdock serve`` starting up: a taken remote-debugging port is one error line, boot start runs in the
background while the API answers, and the signature banner, Marketplace packages, ``--allow-unsigned`` and
ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES on bundle members behave as the official daemon's settings say."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import KEY, DaemonProcess, eventually, free_port
from plugdock.packaging.build import build_bundle, build_package

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
MARKETPLACE = Path(__file__).parent / "fixtures" / "marketplace" / "langgenius-agent_0.0.14.difypkg"
pytestmark = pytest.mark.slow


def stderr_of(d: DaemonProcess) -> str:
    d.stop()
    assert d.proc is not None and d.proc.stderr is not None
    return d.proc.stderr.read().decode()


def test_a_taken_debug_port_is_one_error_line_naming_the_settings(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PLUGDOCK_HOME": str(tmp_path / "home"), "SERVER_PORT": str(free_port()),
               "PLUGIN_REMOTE_INSTALLING_PORT": str(port)}
        result = subprocess.run([sys.executable, "-m", "plugdock", "serve"], env=env, capture_output=True,
                                text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: cannot listen for remote debugging on 127.0.0.1:{port} (the port is taken): set "
                     "PLUGIN_REMOTE_INSTALLING_PORT (or --debug-port) to a free port, or "
                     "PLUGIN_REMOTE_INSTALLING_ENABLED=false (or --no-debug) to run without remote debugging"], \
        result.stderr
    assert not (tmp_path / "home" / "plugdock.db").exists()  # refused before anything started


def test_a_taken_api_port_is_one_error_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PLUGDOCK_HOME": str(tmp_path / "home"), "SERVER_PORT": str(port),
               "PLUGIN_REMOTE_INSTALLING_PORT": "0"}
        result = subprocess.run([sys.executable, "-m", "plugdock", "serve"], env=env, capture_output=True,
                                text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen for the HTTP API on 127.0.0.1:{port} (the port is taken): set SERVER_PORT (or --port) "
        "to a free port"], result.stderr
    assert not (tmp_path / "home" / "plugdock.db").exists()


def test_without_remote_debugging_the_port_is_not_needed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        d = DaemonProcess(tmp_path / "home", PLUGIN_REMOTE_INSTALLING_PORT=str(taken.getsockname()[1]),
                          PLUGIN_REMOTE_INSTALLING_ENABLED="false").start()
        try:
            assert d.client.get("/health/check").json()["status"] == "ok"
        finally:
            d.stop()


def gated(tmp: Path) -> Path:
    """A plugin that does not come up while a file ``gate`` lies in its folder: a slow start the test controls
    (the plugin runs in its folder, which the sandbox leaves visible to it)."""
    root = make_plugin(tmp / "slow", name="slow")
    main = root / "main.py"
    main.write_text("import os, time\nwhile os.path.exists('gate'):\n    time.sleep(0.05)\n" + main.read_text())
    return root


def test_boot_start_runs_in_the_background_and_health_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = DaemonProcess(home).start()
    try:
        first.install(gated(tmp_path))
        first.install(EXAMPLES / "echo_tool")
    finally:
        first.stop()
    [folder] = [p for p in (home / "plugins").iterdir() if p.name.startswith("tester__slow")]
    gate = folder / "gate"
    gate.touch()
    second = DaemonProcess(home, PLUGDOCK_START_PLUGINS="boot")
    try:
        second.start()  # the harness waits for /health/check: it answers while the slow plugin is held
        health = second.client.get("/health/check").json()
        assert health["status"] == "ok" and health["starting"]["plugins"] == 2, health
        assert health["starting"]["started"] <= 1 and health["starting"]["failed"] == 0
        listing = second.data(second.client.get("/plugin/t1/management/list"))
        assert listing["total"] == 2  # the management API answers too
        gate.unlink()

        def finished() -> dict[str, Any] | None:
            health: dict[str, Any] = second.client.get("/health/check").json()
            return None if "starting" in health else health

        done = eventually(finished, "boot start did not finish")
        assert done["pool_status"] == {"installed": 2, "running": 2}
        events = second.dispatch("tool/invoke", "tester/slow", {"provider": "slow", "tool": "slow",
                                                                "credentials": {}, "tool_parameters": {}})
        assert events[-1]["code"] == 0, events
    finally:
        gate.unlink(missing_ok=True)
        err = stderr_of(second)
    assert "plugdock: started 2 of 2 plugin(s) at boot" in err.splitlines()


def test_signatures_are_on_by_default_and_marketplace_packages_verify(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path / "home", FORCE_VERIFYING_SIGNATURE="true").start()
    try:
        uploaded = d.data(d.client.post("/plugin/t1/management/install/upload/package",
                                        files={"dify_pkg": ("agent.difypkg", MARKETPLACE.read_bytes())}))
        assert uploaded["unique_identifier"].startswith("langgenius/agent:0.0.14@")
        assert uploaded["verification"] == {"authorized_category": "langgenius"}
        assert uploaded["manifest"]["verified"] is True
        refused = d.client.post("/plugin/t1/management/install/upload/package",
                                files={"dify_pkg": ("p.difypkg", build_package(EXAMPLES / "echo_tool").data)}).json()
        assert refused["code"] == -400 and "not signed" in refused["message"]
        assert "plugdock serve --allow-unsigned" in refused["message"]
    finally:
        err = stderr_of(d)
    assert ("signature verification: on, 1 trusted key (Dify's official key); for your own unsigned plugins during "
            "development: plugdock serve --allow-unsigned") in err.splitlines()


def langgenius_bundle(tmp: Path) -> bytes:
    """A bundle whose one member says its author is langgenius but is not signed by Dify."""
    member = make_plugin(tmp / "claim", name="claim")
    manifest = member / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("author: tester", "author: langgenius"))
    root = tmp / "bundle"
    shutil.copytree(EXAMPLES / "starter_bundle", root)
    (root / "_assets" / "claim.difypkg").write_bytes(build_package(member).data)
    text = (root / "manifest.yaml").read_text()
    (root / "manifest.yaml").write_text(text[: text.index("dependencies:")]
                                        + "dependencies:\n  - type: package\n    value:\n      path: claim.difypkg\n")
    return build_bundle(root)


def test_allow_unsigned_and_the_langgenius_rule_on_bundles(tmp_path: Path) -> None:
    bundle = langgenius_bundle(tmp_path)
    d = DaemonProcess(tmp_path / "home", FORCE_VERIFYING_SIGNATURE="")  # only the flag turns verification off
    d.start("--allow-unsigned")
    try:
        d.upload(build_package(EXAMPLES / "echo_tool").data)  # unsigned: accepted, unverified
        refused = d.client.post("/plugin/t1/management/install/upload/bundle",
                                files={"dify_bundle": ("b.difybndl", bundle)}).json()
        assert refused["code"] == -400 and "ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES=false" in refused["message"]
        assert "the plugin's author is 'langgenius', but the package is not signed by Dify" in refused["message"]
        # a single upload of the same member is not subject to the rule, as in the official daemon
        member = build_package(tmp_path / "claim").data
        assert d.upload(member).startswith("langgenius/claim:0.0.1@")
    finally:
        err = stderr_of(d)
    assert "signature verification: off (FORCE_VERIFYING_SIGNATURE=false): unsigned packages install; 1 trusted key " \
           "(Dify's official key)" in err.splitlines()
    lenient = DaemonProcess(tmp_path / "home2", ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES="false").start()
    try:
        members = lenient.data(lenient.client.post("/plugin/t1/management/install/upload/bundle",
                                                   files={"dify_bundle": ("b.difybndl", bundle)}))
        assert members[0]["value"]["unique_identifier"].startswith("langgenius/claim:0.0.1@")
    finally:
        lenient.stop()



def plugdock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_quick_start_path_through_the_daemon_walked_as_a_user(tmp_path: Path) -> None:
    """init, package, keygen, sign; then the default daemon refuses the unsigned package saying how to
    proceed, --allow-unsigned installs it, and trusting the key installs the signed one, verified."""
    for step in (["init", "weather", "--kind", "tool", "--name", "weather", "--author", "acme", "-y"],
                 ["package", "weather", "-o", "weather.difypkg"], ["keygen", "--name", "acme", "--bits", "2048"],
                 ["sign", "weather.difypkg", "--key", "acme.private.pem"]):
        done = plugdock(*step, cwd=tmp_path)
        assert done.returncode == 0, (step, done.stderr)
    key_file = tmp_path / "server.key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    home = tmp_path / "home"

    def install(d: DaemonProcess, package: str, tenant: str = "t1") -> subprocess.CompletedProcess[str]:
        return plugdock("install", package, "--daemon", d.url, "--key-file", str(key_file), "--tenant", tenant,
                        cwd=tmp_path)

    strict = DaemonProcess(home, FORCE_VERIFYING_SIGNATURE="true").start()
    try:
        refused = install(strict, "weather.difypkg")
    finally:
        strict.stop()
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: daemon refused: package: the package is not signed"), line
    assert "plugdock serve --allow-unsigned" in line and "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true" in line

    dev = DaemonProcess(home, FORCE_VERIFYING_SIGNATURE="").start("--allow-unsigned")
    try:
        installed = install(dev, "weather.difypkg")
        assert installed.returncode == 0 and installed.stdout.strip().endswith(": installed"), installed.stderr
    finally:
        dev.stop()

    trusting = DaemonProcess(home, FORCE_VERIFYING_SIGNATURE="true", THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED="true",
                             THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS=str(tmp_path / "acme.public.pem")).start()
    try:
        installed = install(trusting, "weather.signed.difypkg", tenant="t2")
        assert installed.returncode == 0, installed.stderr
        [plugin] = trusting.data(trusting.client.get("/plugin/t2/management/list"))["list"]
        assert plugin["plugin_id"] == "acme/weather" and plugin["declaration"]["verified"] is True
    finally:
        err = stderr_of(trusting)
    assert f"signature verification: on, 2 trusted keys (Dify's official key, {tmp_path / 'acme.public.pem'}); " \
           "for your own unsigned plugins during development: plugdock serve --allow-unsigned" in err.splitlines()
