"""The operator's CLI walked as a user walks it (issue 17 items 6, 7, 9, 12): one way to name the daemon and its
key, the chores without curl, logs with times, failures and --follow, the access and install log, Ctrl-C and
an unreachable daemon as one line each, and the API's /docs and /openapi.json."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from daemon_harness import KEY, DaemonProcess, eventually, free_port
from plugdock.cli.main import cli
from plugdock.packaging.build import build_package

EXAMPLES = Path(__file__).parent.parent / "examples"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
CREDENTIALS = """credentials_for_provider:
  api_key:
    type: secret-input
    required: true
    label:
      en_US: API key
  region:
    type: select
    required: false
    label:
      en_US: Region
    options:
      - value: eu
        label:
          en_US: Europe
      - value: us
        label:
          en_US: America
"""


def plugdock(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, input=input)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """echo_tool with a required secret credential and a select: what credentials set must honour."""
    folder = tmp_path_factory.mktemp("plugin") / "echo_tool"
    shutil.copytree(EXAMPLES / "echo_tool", folder)
    provider = folder / "provider" / "echo_tool.yaml"
    provider.write_text(provider.read_text().replace("credentials_for_provider: {}\n", CREDENTIALS))
    return folder


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home"), PLUGDOCK_ACCESS_LOG="true").start()
    yield d
    d.stop()


@pytest.fixture
def env(daemon: DaemonProcess) -> dict[str, str]:
    return {"PLUGDOCK_DAEMON_URL": daemon.url, "PLUGDOCK_KEY": KEY}


def daemon_log(d: DaemonProcess) -> list[str]:
    """The lines the daemon prints on stderr, as they come (read by a thread, so polling them never blocks)."""
    assert d.proc is not None and d.proc.stderr is not None
    lines: list[str] = []
    stream = d.proc.stderr
    threading.Thread(target=lambda: lines.extend(raw.decode().rstrip("\n") for raw in stream), daemon=True).start()
    return lines


@pytest.mark.slow
def test_operator_walk(daemon: DaemonProcess, env: dict[str, str], plugin: Path, tmp_path: Path) -> None:
    package = tmp_path / "echo.difypkg"
    package.write_bytes(build_package(plugin).data)
    code, out, err = plugdock("install", str(package), env=env)
    assert code == 0 and out.strip().endswith(": installed"), err

    code, out, _ = plugdock("plugins", "list", env=env)
    header, row = out.splitlines()
    assert header.split() == ["PLUGIN", "VERSION", "RUNTIME", "SOURCE", "INSTALLED"]
    assert row.split()[:4] == ["plugdock/echo_tool", "0.0.1", "local", "package"]

    # the credentials route refuses what the provider's form refuses, naming the field; no secret on the line
    code, _, err = plugdock("credentials", "set", "plugdock/echo_tool", "--set", "api_key=s3cret", env=env)
    assert code == 1 and "api_key is a secret-input field" in err
    code, _, err = plugdock("credentials", "set", "plugdock/echo_tool", "--set", "region=eu", env=env)
    assert code == 1 and err.strip() == "error: daemon refused: credentials for plugdock/echo_tool: api_key is " \
                                        "required (secret-input)"
    code, _, err = plugdock("credentials", "set", "plugdock/echo_tool", "--set", "region=mars", env=env)
    assert code == 1 and "region must be one of eu, us, not 'mars'" in err
    values = tmp_path / "creds.env"
    values.write_text("# the provider's keys\napi_key=s3cret\n")
    code, out, err = plugdock("credentials", "set", "plugdock/echo_tool", "--from-file", str(values), "--set",
                              "region=eu", env=env)
    assert code == 0, err
    assert out.strip() == "plugdock/echo_tool (tool provider echo_tool): api_key=[__HIDDEN__], region=eu"
    code, out, _ = plugdock("credentials", "list", env=env)
    assert "s3cret" not in out and "api_key=[__HIDDEN__]" in out

    # a failed invocation is in the plugin's log with its route, error and time
    answer = daemon.dispatch("tool/invoke", "plugdock/echo_tool", {"provider": "echo_tool", "tool": "missing",
                                                                   "credentials": {}, "tool_parameters": {}},
                             tenant="default")
    assert answer[0]["code"] != 0
    code, out, _ = plugdock("logs", "plugdock/echo_tool", env=env)
    assert code == 0 and all(STAMPED.match(line) for line in out.splitlines()), out
    failed = [line for line in out.splitlines() if "[failed]" in line]
    assert len(failed) == 1 and "[failed] tool/invoke: ValueError: Tool `missing` not found" in failed[0]

    # --follow prints what comes later, and Ctrl-C ends it without a traceback
    follow = subprocess.Popen([sys.executable, "-m", "plugdock", "logs", "plugdock/echo_tool", "-f", "-n", "1"],
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    assert follow.stdout is not None
    stream = follow.stdout
    threading.Thread(target=lambda: printed.extend(stream), daemon=True).start()
    try:
        eventually(lambda: printed, "logs -f printed nothing", bound=60)
        daemon.dispatch("tool/invoke", "plugdock/echo_tool", {"provider": "echo_tool", "tool": "later",
                                                              "credentials": {}, "tool_parameters": {}},
                        tenant="default")
        eventually(lambda: any("Tool `later` not found" in line for line in printed), "logs -f missed a line", 60)
        assert len(printed) == 2 and STAMPED.match(printed[1])  # the last line kept, then only the new one
    finally:
        follow.send_signal(signal.SIGINT)
        _, follow_err = follow.communicate(timeout=60)
    assert follow.returncode == 130 and "Traceback" not in follow_err

    code, out, _ = plugdock("plugins", "uninstall", "plugdock/echo_tool", "-y", env=env)
    assert code == 0 and out.strip().endswith(": uninstalled")
    code, _, err = plugdock("plugins", "list", env=env)
    assert code == 0 and "no plugins installed for tenant default" in err
    code, _, err = plugdock("plugins", "uninstall", "plugdock/echo_tool", "-y", env=env)
    assert code == 1 and "is not installed for tenant default" in err


@pytest.mark.slow
def test_debug_key_and_debug_daemon_then_ctrl_c(daemon: DaemonProcess, env: dict[str, str],
                                                tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("OTHER=kept\nREMOTE_INSTALL_KEY=stale\n")
    code, out, err = plugdock("debug-key", "--env-file", str(dotenv), env=env)
    assert code == 0 and out == "" and "wrote REMOTE_INSTALL_URL=127.0.0.1:" in err
    lines = dotenv.read_text().splitlines()
    assert lines[0] == "OTHER=kept" and "REMOTE_INSTALL_KEY=stale" not in lines
    assert dotenv.stat().st_mode & 0o777 == 0o600
    code, out, _ = plugdock("debug-key", env=env)
    assert [line.split("=")[0] for line in out.splitlines()] == ["INSTALL_METHOD", "REMOTE_INSTALL_URL",
                                                                 "REMOTE_INSTALL_KEY"]

    # plugdock debug --daemon: the debug key is fetched with the server key, which never is an argument
    proc = subprocess.Popen([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"), "--daemon",
                             daemon.url], env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    try:
        def listed() -> bool:
            rows = daemon.data(daemon.client.get("/plugin/default/management/list"))["list"]
            return any(r["plugin_id"] == "plugdock/echo_tool" and r["runtime_type"] == "remote" for r in rows)

        eventually(listed, "the debugging plugin never appeared")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "plugdock: stopped; the daemon drops the plugin now that the " \
                                           "connection closed"
    eventually(lambda: not listed(), "the debugging plugin never left")

    code, _, err = plugdock("debug", str(EXAMPLES / "echo_tool"), "--url", "127.0.0.1:1", "--key-file",
                            str(tmp_path / "none"), env=env)
    assert code == 1 and "--url is deprecated" in err and "no such file" in err


@pytest.mark.slow
def test_docs_openapi_and_the_key(daemon: DaemonProcess) -> None:
    docs = httpx.get(f"{daemon.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text  # a browser sends no key: the page loads
    schema = httpx.get(f"{daemon.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "The daemon's server key (SERVER_KEY)."}
    ids = Counter(op["operationId"] for item in schema["paths"].values() for op in item.values())
    assert ids and max(ids.values()) == 1
    assert "management_list" in " ".join(ids)
    # what Authorize then sends is what every call needs
    assert httpx.get(f"{daemon.url}/plugin/t1/management/list").status_code == 401
    assert httpx.get(f"{daemon.url}/plugin/t1/management/list", headers={"X-Api-Key": KEY}).status_code == 200


@pytest.mark.slow
def test_daemon_log_has_access_lines_and_installs_never_the_key(tmp_path: Path, plugin: Path) -> None:
    d = DaemonProcess(tmp_path / "home", PLUGDOCK_ACCESS_LOG="true").start()
    log = daemon_log(d)
    try:
        d.install(plugin, tenant="t1")
        d.client.get("/plugin/t1/management/list", params={"page": 1})
        assert httpx.get(f"{d.url}/plugin/t1/management/list").status_code == 401
        eventually(lambda: any(line.endswith(": success") for line in log), "the install's outcome never logged")
        eventually(lambda: any(" 401 " in line for line in log), "the refused call never logged")
    finally:
        d.stop()
    assert not any(KEY in line for line in log)
    access = [line for line in log if " /plugin/t1/management/list " in line]
    assert STAMPED.match(access[0]) and access[0].split()[1:4] == ["GET", "/plugin/t1/management/list", "200"]
    assert access[0].endswith(" ms") and "page=" not in access[0]  # no query string: nothing it carries shows
    assert any(line.split()[1:4] == ["GET", "/plugin/t1/management/list", "401"] for line in access)
    task = [line for line in log if " install task " in line]
    assert "started for tenant t1: plugdock/echo_tool:0.0.1@" in task[0]
    assert task[-2].endswith(" installed") and task[-1].endswith(": success")


def test_access_log_is_off_by_default(tmp_path: Path) -> None:
    from plugdock.daemon.settings import load_settings

    assert load_settings(None, {"home": tmp_path}, environ={}).access_log is False
    assert load_settings(None, {"home": tmp_path}, environ={"PLUGDOCK_ACCESS_LOG": "on"}).access_log is True


@pytest.mark.parametrize("args", [("install", "{pkg}"), ("logs", "a/b"), ("logs", "a/b", "-f"),
                                  ("plugins", "list"), ("plugins", "uninstall", "a/b", "-y"),
                                  ("credentials", "set", "a/b"), ("credentials", "list"), ("debug-key",),
                                  ("debug", str(EXAMPLES / "echo_tool"))])
def test_unreachable_daemon_is_one_line_everywhere(tmp_path: Path, args: tuple[str, ...]) -> None:
    package = tmp_path / "p.difypkg"
    package.write_bytes(build_package(EXAMPLES / "echo_tool").data)
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = plugdock(*(a.format(pkg=package) for a in args),
                              env={"PLUGDOCK_DAEMON_URL": url, "PLUGDOCK_KEY": "k"})
    assert code == 1 and out == ""
    assert err == f"error: cannot reach the daemon at {url}: connection refused; is `plugdock serve` running " \
                  "there? Name another with --daemon or PLUGDOCK_DAEMON_URL\n"


def test_a_daemon_url_without_scheme_or_a_non_daemon_is_one_line(tmp_path: Path) -> None:
    code, _, err = plugdock("plugins", "list", "--daemon", "127.0.0.1:5002", env={"PLUGDOCK_KEY": "k"})
    assert code == 1 and err.strip() == "error: daemon URL '127.0.0.1:5002' must start with http:// or https:// " \
                                        "(--daemon or PLUGDOCK_DAEMON_URL)"


def test_the_local_daemons_key_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "server.key").write_text("k\n")
    (tmp_path / "server.key").chmod(0o600)
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = plugdock("plugins", "list", "--daemon", url, env={"PLUGDOCK_HOME": str(tmp_path)})
    assert code == 1 and "cannot reach the daemon" in err  # the key was found: it got as far as connecting
    code, _, err = plugdock("plugins", "list", "--daemon", url, env={"PLUGDOCK_HOME": str(tmp_path / "none")})
    assert code == 1 and "no server key given: pass --key-file PATH or set PLUGDOCK_KEY" in err


def test_help_everywhere_with_h_and_whole_summaries() -> None:
    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path in walk(cli, []):
        code, out, _ = plugdock(*path, "-h")
        assert code == 0 and out.startswith("Usage: "), path
        if "Commands:" in out:  # click would cut each summary at 45 characters with "..."
            assert "..." not in out.split("Commands:")[-1], (path, out)


def test_no_color_is_honoured() -> None:
    args = ["plugins", "list", "--daemon", "nowhere"]
    coloured = CliRunner().invoke(cli, args, color=True, env={"PLUGDOCK_KEY": "k"})
    plain = CliRunner().invoke(cli, args, color=True, env={"PLUGDOCK_KEY": "k", "NO_COLOR": "1"})
    assert "\x1b[31m" in coloured.stderr and plain.exit_code == coloured.exit_code == 1
    assert "\x1b[" not in plain.stderr and plain.stderr.startswith("error: daemon URL 'nowhere'")


def test_the_plugin_folder_defaults_to_here(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "echo_tool", tmp_path / "echo_tool")
    old = os.getcwd()
    os.chdir(tmp_path / "echo_tool")
    try:
        code, out, err = plugdock("validate")
        assert code == 0, err
        code, out, err = plugdock("checksum")
        assert code == 0 and len(out.strip()) == 64, err
        usage = plugdock("package", "-h")[1]
        assert "[DIRECTORY]" in usage
    finally:
        os.chdir(old)


def test_log_lines_keep_times_and_numbers_past_the_cap() -> None:
    from plugdock.daemon.state.logbook import LogLines, entries_of, last_seq

    logs = LogLines(maxlen=3)
    for n in range(5):
        logs.append(f"line {n}")
    assert list(logs) == ["line 2", "line 3", "line 4"] and last_seq(logs) == 5  # readers still see strings
    assert [(e["seq"], e["line"]) for e in logs.entries(after=3)] == [(4, "line 3"), (5, "line 4")]
    assert [e["seq"] for e in logs.entries(limit=1)] == [5] and all(STAMPED.match(e["time"] + " ")
                                                                     for e in logs.entries())
    assert entries_of(["plain"]) == [{"seq": 1, "time": "", "line": "plain"}]
