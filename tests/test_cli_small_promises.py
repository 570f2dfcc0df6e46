"""Small CLI promises of README.md walked as a user walks them (newcomer review): ``logs -f`` ends on Ctrl-C
with 130, ``serve --preinstall`` says why it skips a bundle, the missing-key error names the documented
variable, ``install`` prints no stray line, ``plugins uninstall`` without a terminal refuses instead of
prompting, ``checksum`` refuses a folder without manifest.yaml, and ``serve --debug-port``/``--no-debug``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import KEY, DaemonProcess, eventually, free_port
from plugdock.packaging.build import build_package

EXAMPLES = Path(__file__).parent.parent / "examples"
KEY_NAMES = ("PLUGDOCK_KEY", "PLUGDOCK_SERVER_KEY", "PLUGDOCK_DAEMON_URL")


def run(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``plugdock ARGS`` as a script runs it: no terminal on stdin, stdout or stderr."""
    return subprocess.run([sys.executable, "-m", "plugdock", *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600, check=False)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No key and no daemon from the caller's environment; a home of the test's own."""
    return {**{k: v for k, v in os.environ.items() if k not in KEY_NAMES}, "PLUGDOCK_HOME": str(home), **extra}


class Daemon:
    """A daemon preinstalling a folder holding echo_tool and the starter bundle, its stderr read as it comes."""

    def __init__(self, root: Path) -> None:
        examples = root / "examples"
        for name in ("echo_tool", "starter_bundle"):
            shutil.copytree(EXAMPLES / name, examples / name)
        self.examples = examples
        self.debug_port = free_port()
        self.process = DaemonProcess(root / "home")
        self.process.start("--preinstall", str(examples), "--debug-port", str(self.debug_port), timeout=600)
        assert self.process.proc is not None and self.process.proc.stderr is not None
        self.log: list[str] = []
        stream = self.process.proc.stderr
        threading.Thread(target=lambda: self.log.extend(raw.decode().rstrip("\n") for raw in stream),
                         daemon=True).start()

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.process.home, PLUGDOCK_DAEMON_URL=self.process.url, PLUGDOCK_KEY=KEY, **extra)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("small"))
    yield d
    d.process.stop()


@pytest.mark.slow
def test_preinstall_says_in_one_line_why_a_bundle_is_skipped(daemon: Daemon) -> None:
    bundle = daemon.examples / "starter_bundle"
    eventually(lambda: any("plugdock/echo_tool" in line and "installed" in line for line in daemon.log),
               "the preinstall lines never came")
    skipped = [line for line in daemon.log if "starter_bundle" in line]
    assert skipped == [f"plugdock: skipped {bundle}: a bundle is not a plugin; install its members with "
                       f"`plugdock package {bundle} -o starter_bundle.difybndl` and `plugdock install "
                       "starter_bundle.difybndl`"], daemon.log


@pytest.mark.slow
def test_serve_debug_port_flag_moves_the_debug_port(daemon: Daemon) -> None:
    result = run("debug-key", env=daemon.env())
    assert result.returncode == 0, result.stderr
    assert f"REMOTE_INSTALL_URL=127.0.0.1:{daemon.debug_port}" in result.stdout.splitlines()


@pytest.mark.slow
def test_logs_follow_ends_on_ctrl_c_with_130_and_one_line(daemon: Daemon) -> None:
    follow = subprocess.Popen([sys.executable, "-m", "plugdock", "logs", "plugdock/echo_tool", "-f"],
                              env=daemon.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert follow.stderr is not None
    header = follow.stderr.readline()  # "# IDENTIFIER (state)": it is following now
    follow.send_signal(signal.SIGINT)
    _, rest = follow.communicate(timeout=120)
    assert header.startswith("# plugdock/echo_tool:"), header + rest
    assert follow.returncode == 130, rest
    assert rest.strip().splitlines() == ["plugdock: stopped following"], rest


@pytest.mark.slow
def test_install_off_a_terminal_prints_only_the_result_lines(daemon: Daemon, tmp_path: Path) -> None:
    package = tmp_path / "echo.difypkg"
    package.write_bytes(build_package(daemon.examples / "echo_tool").data)
    result = run("install", str(package), "--tenant", "other", env=daemon.env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("plugdock/echo_tool:") and lines[0].endswith(": installed"), \
        result.stdout


@pytest.mark.slow
def test_uninstall_without_a_terminal_refuses_instead_of_prompting(daemon: Daemon) -> None:
    result = run("plugins", "uninstall", "plugdock/echo_tool", env=daemon.env())
    assert result.returncode == 1 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not uninstalling plugdock/echo_tool:"), result.stderr
    assert lines[0].endswith("stdin is not a terminal: pass -y to uninstall without asking")
    listed = run("plugins", "list", env=daemon.env())
    assert "plugdock/echo_tool" in listed.stdout  # still installed


@pytest.mark.slow
def test_the_daemons_alias_plugdock_server_key_still_names_the_key(daemon: Daemon) -> None:
    env = {k: v for k, v in daemon.env().items() if k != "PLUGDOCK_KEY"}
    result = run("plugins", "list", env={**env, "PLUGDOCK_SERVER_KEY": KEY})
    assert result.returncode == 0 and "plugdock/echo_tool" in result.stdout, result.stderr


def test_a_missing_key_names_the_documented_variable_only(tmp_path: Path) -> None:
    result = run("plugins", "list", "--daemon", "http://127.0.0.1:1", env=clean_env(tmp_path / "home"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: no server key given: pass --key-file PATH or set PLUGDOCK_KEY (plugdock serve writes the key it "
        "generates to PLUGDOCK_HOME/server.key)"], result.stderr


def test_checksum_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "stray.py").write_text("print('not a plugin')\n")
    for args, named in ((("checksum",), "."), (("checksum", str(tmp_path)), str(tmp_path))):
        result = run(*args, env=clean_env(tmp_path / "home"), cwd=tmp_path)
        assert result.returncode == 1 and result.stdout == "", result.stdout
        assert result.stderr.strip().splitlines() == [
            f"error: {named} holds no manifest.yaml: name the plugin folder (the one with manifest.yaml) or a "
            ".difypkg"], result.stderr


def test_serve_debug_flags_are_settings_with_their_source(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home", PLUGIN_REMOTE_INSTALLING_PORT="5003")
    shown = run("serve", "--debug-port", "6100", "--print-config", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("(flag)") == 1 and "remote_installing_port" in shown.stdout
    assert [line.split() for line in shown.stdout.splitlines() if line.startswith("remote_installing_port")] == [
        ["remote_installing_port", "6100", "(flag)"]]
    off = run("serve", "--no-debug", "--print-config", env=env)
    assert [line.split() for line in off.stdout.splitlines() if line.startswith("remote_installing_enabled")] == [
        ["remote_installing_enabled", "False", "(flag)"]]
    both = run("serve", "--no-debug", "--debug-port", "6100", env=env)
    assert both.returncode == 2 and "give --debug-port or --no-debug, not both" in both.stderr
    helped = run("serve", "-h", env=env)
    assert "--debug-port PORT" in helped.stdout and "--no-debug" in helped.stdout
    words = " ".join(helped.stdout.split())
    assert "PLUGIN_REMOTE_INSTALLING_PORT" in words and "PLUGIN_REMOTE_INSTALLING_ENABLED=false" in words
