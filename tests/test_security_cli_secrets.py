"""Secrets stay off command lines (issue 12, item 7): the real CLI against a real daemon, while a plugin of that
daemon reads every process's /proc/<pid>/cmdline, as the hostile review did.

``plugdock logs`` is held alive deterministically: the plugin's log holds far more than a pipe can take and the
test reads only the first bytes of the CLI's output, so the CLI has used its key and is blocked writing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon_harness import DaemonProcess
from plugdock.packaging.build import build_package

from conftest import make_plugin

pytestmark = pytest.mark.slow

FILLER_LINES = 300  # of ~900 bytes each: ~270 KB of log, several times a pipe's 64 KiB
SNOOP = '''import os, sys
from plugdock.sdk import Tool


def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().replace(b"\\0", b" ").decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__


class T(Tool):
    def _invoke(self, tool_parameters):
        if tool_parameters.get("mode") == "fill":
            for number in range(FILLER_COUNT):
                sys.stderr.write(f"filler {number} " + "x" * 900 + "\\n")
            sys.stderr.flush()
            yield self.create_text_message("filled")
            return
        pid = int(tool_parameters["pid"])
        every = [read(f"/proc/{p}/cmdline") for p in os.listdir("/proc") if p.isdigit()]
        yield self.create_json_message({"uid": os.getuid(), "cmdline": read(f"/proc/{pid}/cmdline"),
                                        "environ": read(f"/proc/{pid}/environ"),
                                        "every_cmdline": [c for c in every if "plugdock" in c]})
'''.replace("FILLER_COUNT", str(FILLER_LINES))


def plugdock(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run the CLI with no key in its environment unless the test puts one there."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PLUGDOCK_KEY", "PLUGDOCK_SERVER_KEY",
                                                              "PLUGDOCK_DAEMON_URL")}
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-m", "plugdock", *args], env={**clean, **(env or {})}, capture_output=True, text=True,
        timeout=300, check=False, **kwargs)
    return result


def key_file(folder: Path, content: str, mode: int = 0o600) -> Path:
    path = folder / f"key-{uuid.uuid4().hex[:8]}"
    path.write_text(content)
    path.chmod(mode)
    return path


class Daemon:
    def __init__(self, process: DaemonProcess, key: str, key_path: Path) -> None:
        self.process, self.url, self.key, self.key_path = process, process.url, key, key_path


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    # A key of its own: other suites on this host pass the harness's key on command lines.
    key = f"cli-secret-{uuid.uuid4().hex}"
    # Beside pytest's temp folders, not in them: a concurrent pytest run resets pytest-of-root to mode 700,
    # which plugin users could then no longer enter.
    folder = Path(tempfile.mkdtemp(prefix="plugdock-cli-secrets-"))
    folder.chmod(0o711)
    d = DaemonProcess(folder / "home", SERVER_KEY=key)
    d.client = httpx.Client(base_url=d.url, headers={"X-Api-Key": key}, timeout=300)
    d.start()
    try:
        root = make_plugin(folder / "snoop", name="snoop")
        (root / "tools" / "snoop.py").write_text(SNOOP)
        package = folder / "snoop.difypkg"
        package.write_bytes(build_package(root).data)
        path = key_file(folder, key + "\n")
        installed = plugdock("install", str(package), "--daemon", d.url, "--key-file", str(path), "--tenant", "t1")
        assert installed.returncode == 0 and ": installed" in installed.stdout, installed.stderr
        assert "warning" not in installed.stderr
        yield Daemon(d, key, path)
    finally:
        d.stop()
        shutil.rmtree(folder, ignore_errors=True)


def snoop(d: Daemon, **params: object) -> dict[str, Any]:
    chunks = d.process.dispatch("tool/invoke", "tester/snoop", {"provider": "snoop", "tool": "snoop",
                                                                "credentials": {}, "tool_parameters": params})
    return chunks[0]["data"]["message"]["json_object"] if params.get("mode") != "fill" else chunks[0]


def fill_log(d: Daemon) -> None:
    snoop(d, mode="fill")
    for _ in range(600):  # the daemon reads the plugin's stderr on its own; wait for the lines, not for time
        kept = d.process.data(d.process.client.get("/plugin/t1/management/logs",
                                                   params={"plugin_id": "tester/snoop", "lines": 1000}))["lines"]
        if sum("filler" in line for line in kept) >= FILLER_LINES:
            return
        time.sleep(0.05)
    raise AssertionError("the plugin's filler lines never reached the daemon's log")


@pytest.mark.skipif(os.geteuid() != 0, reason="a plugin user apart from the CLI's needs the daemon to run as root")
@pytest.mark.parametrize("way", ["key-file", "env", "cli-value"])
def test_a_plugin_cannot_read_the_key_of_a_running_cli(daemon: Daemon, way: str) -> None:
    fill_log(daemon)
    args = [sys.executable, "-m", "plugdock", "logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1",
            "-n", "1000"]
    env = {k: v for k, v in os.environ.items() if k not in ("PLUGDOCK_KEY", "PLUGDOCK_SERVER_KEY")}
    if way == "key-file":
        args += ["--key-file", str(daemon.key_path)]
    elif way == "env":
        env["PLUGDOCK_KEY"] = daemon.key
    else:
        args += ["--key", daemon.key]
    cli = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert cli.stdout is not None
        first = os.read(cli.stdout.fileno(), 64)  # the daemon accepted the key and answered: the CLI is printing
        assert b"[plugdock]" in first or b"filler" in first, first  # each line after its UTC time
        assert cli.poll() is None  # blocked on the full pipe, alive while the plugin looks
        own_view = Path(f"/proc/{cli.pid}/cmdline").read_bytes().decode()
        seen = snoop(daemon, pid=cli.pid)
    finally:
        out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert (first + out).count(b"filler") >= FILLER_LINES
    assert seen["uid"] != os.getuid()  # the plugin is another user, as on any sandboxed host
    assert "logs" in seen["cmdline"]  # it does see the CLI's command line
    if way == "cli-value":  # the attack works against the deprecated flag, and the CLI says so
        assert daemon.key in own_view and daemon.key in seen["cmdline"]
        assert "--key puts the server key on the command line" in err.decode()
        assert f"/proc/{cli.pid}/cmdline" in err.decode() and "--key-file" in err.decode()
        return
    assert daemon.key not in own_view
    assert not any(daemon.key in line for line in seen["every_cmdline"])
    assert seen["environ"] == "PermissionError"  # PLUGDOCK_KEY stays with the CLI's own user
    assert b"warning" not in err


def test_wrong_key_is_one_line_naming_where_it_came_from(daemon: Daemon, tmp_path: Path) -> None:
    wrong = key_file(tmp_path, "not-the-key")
    by_file = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1", "--key-file", str(wrong))
    assert by_file.returncode == 1 and "Traceback" not in by_file.stderr
    assert by_file.stderr.strip().splitlines() == [
        f"error: the daemon at {daemon.url} refused the server key from --key-file {wrong} (HTTP 401): it must "
        "match the daemon's SERVER_KEY or HOME/server.key"]
    by_env = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1",
                      env={"PLUGDOCK_KEY": "not-the-key"})
    assert by_env.returncode == 1 and len(by_env.stderr.strip().splitlines()) == 1
    assert "refused the server key from PLUGDOCK_KEY (HTTP 401)" in by_env.stderr


def test_deprecated_key_value_still_works_with_a_warning(daemon: Daemon) -> None:
    cli = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1", "--key", daemon.key)
    assert cli.returncode == 0, cli.stderr
    warning = cli.stderr.splitlines()[0]
    assert warning.startswith("warning: --key puts the server key on the command line, where every local process")
    assert "/cmdline" in warning and "pass --key-file PATH or set PLUGDOCK_KEY instead" in warning


def test_daemon_url_from_the_environment(daemon: Daemon) -> None:
    cli = plugdock("logs", "tester/snoop", "--tenant", "t1", "--key-file", str(daemon.key_path),
                   env={"PLUGDOCK_DAEMON_URL": daemon.url})
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.startswith("# tester/snoop:")


def test_flag_beats_environment_and_two_flags_are_refused(daemon: Daemon, tmp_path: Path) -> None:
    cli = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1", "--key-file",
                   str(daemon.key_path), env={"PLUGDOCK_KEY": "not-the-key"})
    assert cli.returncode == 0, cli.stderr
    both = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--key-file", str(daemon.key_path),
                    "--key", daemon.key)
    assert both.returncode == 1 and both.stderr.strip() == "error: give --key-file or --key, not both"


def test_unreachable_daemon_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        cli = plugdock("logs", "a/b", "--daemon", url, "--key-file", str(key_file(tmp_path, "k")))
    assert cli.returncode == 1 and len(cli.stderr.strip().splitlines()) == 1
    assert cli.stderr.startswith(f"error: cannot reach the daemon at {url}: ")
    assert "PLUGDOCK_DAEMON_URL" in cli.stderr


@pytest.mark.parametrize(("content", "mode", "expected"), [
    (None, 0o600, "{path}: no such file"),
    ("", 0o600, "{path}: the file is empty"),
    ("  \n\n", 0o600, "{path}: the file is empty"),
    ("one\ntwo\n", 0o600, "{path}: holds 2 lines; a key file holds the key alone, on one line"),
    ("caf\u00e9", 0o600, "{path}: character 4 of the key is not printable ASCII (U+00E9)"),
    ("x" * (64 * 1024 + 1), 0o600, "{path}: larger than 64 KiB; a key file holds the key alone"),
])
def test_bad_key_files_are_named(tmp_path: Path, content: str | None, mode: int, expected: str) -> None:
    path = tmp_path / "missing.key" if content is None else key_file(tmp_path, content, mode)
    cli = plugdock("logs", "a/b", "--daemon", "http://127.0.0.1:9", "--key-file", str(path))
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().splitlines() == ["error: --key-file " + expected.format(path=path)]


def test_a_folder_or_an_unreadable_file_is_named(tmp_path: Path) -> None:
    folder = plugdock("logs", "a/b", "--key-file", str(tmp_path))
    assert folder.returncode == 1 and folder.stderr.strip() == f"error: --key-file {tmp_path}: is a directory, " \
                                                                "not a key file"
    path = key_file(tmp_path, "k", 0o000)
    # root reads any file; without the capabilities that let it, root is refused like anyone else
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    cli = subprocess.run([*drop, sys.executable, "-m", "plugdock", "logs", "a/b", "--key-file", str(path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: --key-file {path}: permission denied (this command runs as uid " \
                                 f"{os.geteuid()})"


def test_key_file_readable_by_others_is_warned_and_used(daemon: Daemon, tmp_path: Path) -> None:
    path = key_file(tmp_path, daemon.key, 0o644)
    cli = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1", "--key-file", str(path))
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.splitlines()[0] == f"warning: --key-file {path} is readable by its group and others " \
                                         f"(mode 644): chmod 600 {path}"


def test_key_from_a_pipe(daemon: Daemon) -> None:
    """``--key-file <(pass show plugdock)``: the shell hands over a pipe, which is read like a file."""
    read_end, write_end = os.pipe()
    os.write(write_end, daemon.key.encode() + b"\n")
    os.close(write_end)
    try:
        cli = plugdock("logs", "tester/snoop", "--daemon", daemon.url, "--tenant", "t1", "--key-file",
                       f"/dev/fd/{read_end}", pass_fds=(read_end,))
    finally:
        os.close(read_end)
    assert cli.returncode == 0, cli.stderr


def test_serve_warns_about_a_password_in_db_only_on_the_command_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://plugdock:hunter2@127.0.0.1:5432/plugdock"
    flag = plugdock("serve", "--home", str(tmp_path), "--db", url, "--print-config")
    assert flag.returncode == 0, flag.stderr
    assert flag.stderr.startswith("warning: --db puts the password in the URL on the command line, where every "
                                  "local process (plugins included) can read it in /proc/")
    assert "set DB_URL or PLUGDOCK_DB_URL, or db_url in the --config file, instead" in flag.stderr
    assert "hunter2" not in flag.stdout + flag.stderr
    query = plugdock("serve", "--home", str(tmp_path), "--db", "postgresql://h/db?password=hunter2", "--print-config")
    assert "warning: --db puts the password" in query.stderr
    env = plugdock("serve", "--home", str(tmp_path), "--print-config", env={"DB_URL": url})
    assert env.returncode == 0 and "warning" not in env.stderr
    plain = plugdock("serve", "--home", str(tmp_path), "--db", "postgresql://plugdock@127.0.0.1/plugdock",
                     "--print-config")
    assert plain.returncode == 0 and "warning" not in plain.stderr


def test_debug_takes_its_key_from_a_file_or_the_environment(daemon: Daemon, tmp_path: Path) -> None:
    """``plugdock debug`` hands the key to the plugin's environment, never to its command line; the full
    registration with --key-file is in test_daemon_debugging.py."""
    plugin = Path(__file__).parent.parent / "examples" / "echo_tool"
    port = daemon.process.data(daemon.process.client.post("/plugin/t1/debugging/key"))["port"]
    none = plugdock("debug", str(plugin), "--url", "127.0.0.1:9")
    assert none.returncode == 1 and none.stderr.startswith("warning: --url is deprecated")  # --daemon replaces it
    assert none.stderr.strip().splitlines()[-1] == "error: no debug key given: pass --key-file PATH or set " \
                                                   "PLUGDOCK_DEBUG_KEY or REMOTE_INSTALL_KEY"
    missing = plugdock("debug", str(plugin), "--url", "127.0.0.1:9", "--key-file", str(tmp_path / "nope"))
    assert missing.stderr.strip().splitlines()[-1] == f"error: --key-file {tmp_path / 'nope'}: no such file"
    value = plugdock("debug", str(plugin), "--url", "127.0.0.1:9", "--key", "k", "--key-file",
                     str(key_file(tmp_path, "k")))
    assert value.stderr.strip().splitlines()[-1] == "error: give --key-file or --key, not both"
    warned = plugdock("debug", str(plugin), "--url", f"127.0.0.1:{port}", "--key", "not-a-key")
    assert warned.returncode == 1
    assert warned.stderr.splitlines()[1].startswith("warning: --key puts the debug key on the command line")
    assert "pass --key-file PATH or set PLUGDOCK_DEBUG_KEY instead" in warned.stderr.splitlines()[1]
    by_env = plugdock("debug", str(plugin), "--url", f"127.0.0.1:{port}", env={"PLUGDOCK_DEBUG_KEY": "not-a-key"})
    assert by_env.returncode == 1 and "warning: --key" not in by_env.stderr
    assert "invalid key" in by_env.stderr or "check the debug key" in by_env.stderr


def test_help_names_the_safe_ways() -> None:
    for command in ("install", "logs"):
        text = plugdock(command, "--help").stdout
        assert "--key-file" in text and "PLUGDOCK_KEY" in text and "PLUGDOCK_DAEMON_URL" in text
        assert "Deprecated" in text
    assert "DB_URL" in plugdock("serve", "--help").stdout

