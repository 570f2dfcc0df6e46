"""Packages carry plugdock inside (a hash-pinned ``plugdock-sdk`` wheel), so they install where plugdock is on no index.

The slow tests reproduce the official daemon's install (internal/core/local_runtime/setup_python_environment.go):
``uv venv .venv --python 3.12`` and ``uv pip install -r requirements.txt`` (or ``uv sync --no-dev [--frozen]`` when
``pyproject.toml`` exists) in the plugin folder, with only ``VIRTUAL_ENV``, ``PATH``, ``UV_CACHE_DIR`` and the
certificate variables in the environment, against PyPI, no find-links; then ``python -m main`` and a request over
stdio.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from bench.environments import official_daemon_env, official_install_commands
from packaging.requirements import Requirement

from daemon_harness import KEY, DaemonProcess
from plugdock.daemon.plugins.requirements_policy import RequirementsRefused, check_requirements
from plugdock.errors import PackageError
from plugdock.packaging.build import build_package
from plugdock.packaging.runtime_wheel import DEPENDENCIES, build_runtime_wheel
from plugdock.packaging.ship_runtime import rewrite_requirements, ship_runtime
from plugdock.packaging.uv import uv_binary
from plugdock.runtime.http_wire import serialize_request
from wire import PluginProcess, stream_data

from conftest import KINDS, make_plugin

REPO = Path(__file__).parent.parent
WHEEL = build_runtime_wheel()
LINE = WHEEL.requirement_line()


# -- the wheel --------------------------------------------------------------------------------------------

def wheel_names() -> list[str]:
    return zipfile.ZipFile(io.BytesIO(WHEEL.data)).namelist()


def test_the_wheel_holds_the_sdk_runtime_protocol_and_schemas_and_nothing_of_the_host_side() -> None:
    names = wheel_names()
    parts = {name.split("/")[1] for name in names if name.startswith("plugdock/") and name.count("/") > 1}
    assert parts == {"sdk", "runtime", "protocol", "schema"}
    assert {"plugdock/__init__.py", "plugdock/errors.py", "plugdock/py.typed"} <= set(names)
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert WHEEL.filename == "plugdock_sdk-0.1.0-py3-none-any.whl"
    metadata = zipfile.ZipFile(io.BytesIO(WHEEL.data)).read("plugdock_sdk-0.1.0.dist-info/METADATA").decode()
    assert "Name: plugdock-sdk\n" in metadata and "Requires-Python: >=3.11\n" in metadata
    assert [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")] == list(DEPENDENCIES)


def test_its_record_lists_every_file_with_its_hash() -> None:
    archive = zipfile.ZipFile(io.BytesIO(WHEEL.data))
    record = archive.read("plugdock_sdk-0.1.0.dist-info/RECORD").decode().splitlines()
    listed = {row.split(",")[0]: row.split(",")[1] for row in record}
    assert set(listed) == set(archive.namelist())
    for name, digest in listed.items():
        if digest:
            raw = hashlib.sha256(archive.read(name)).digest()
            assert digest == "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), name


def test_the_same_plugdock_builds_the_same_bytes() -> None:
    from plugdock.packaging import runtime_wheel

    runtime_wheel._built.clear()
    assert build_runtime_wheel().data == WHEEL.data


def test_its_dependencies_are_plugdocks_own() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ours = {Requirement(d).name.lower(): str(Requirement(d).specifier) for d in declared}
    for dependency in DEPENDENCIES:
        requirement = Requirement(dependency)
        assert ours.get(requirement.name.lower()) == str(requirement.specifier), dependency


# -- requirements.txt -------------------------------------------------------------------------------------

def test_each_spelling_of_plugdock_becomes_the_pinned_line_and_the_rest_stays() -> None:
    source = (b"# deps\nwerkzeug>=3.0\nplugdock>=0.1\nPlugDock-SDK ; python_version >= '3.11'  # the sdk\n"
              b"plugdock_sdk @ ./wheels/plugdock_sdk-0.0.9-py3-none-any.whl --hash=sha256:" + b"0" * 64 + b"\n")
    out = rewrite_requirements(source, WHEEL).decode().splitlines()
    assert out[:2] == ["# deps", "werkzeug>=3.0"]
    assert out[2] == LINE and out[4] == LINE
    assert out[3] == WHEEL.requirement_line('python_version >= "3.11"')
    assert rewrite_requirements("\n".join(out).encode(), WHEEL).decode().splitlines() == out  # idempotent


def test_a_version_the_carried_plugdock_does_not_satisfy_is_refused_naming_the_line() -> None:
    with pytest.raises(PackageError) as refused:
        rewrite_requirements(b"httpx\nplugdock>=9\n", WHEEL)
    assert str(refused.value).startswith("requirements.txt:2: the plugin asks for plugdock>=9, and this plugdock, "
                                         "which the package would carry, is 0.1.0")


def test_a_plugin_that_does_not_name_plugdock_gets_no_wheel() -> None:
    files = [("main.py", b""), ("requirements.txt", b"dify_plugin>=0.2\n")]
    assert ship_runtime(files) == files


def test_packages_carry_the_wheel_and_the_folder_is_left_as_written(tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "demo")
    (plugin / "wheels").mkdir()
    (plugin / "wheels" / "plugdock_sdk-0.0.1-py3-none-any.whl").write_bytes(b"an old copy")
    before = (plugin / "requirements.txt").read_bytes()
    built = build_package(plugin)
    archive = zipfile.ZipFile(io.BytesIO(built.data))
    files = {name: archive.read(name) for name in built.files}
    assert files[WHEEL.package_path] == WHEEL.data
    assert "wheels/plugdock_sdk-0.0.1-py3-none-any.whl" not in files
    assert LINE in files["requirements.txt"].decode().splitlines()
    assert (plugin / "requirements.txt").read_bytes() == before


def test_the_daemon_takes_plugdock_only_from_the_wheel_a_package_carries(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / WHEEL.package_path).write_bytes(WHEEL.data)
    checked = check_requirements(f"werkzeug\n{LINE}\n".encode(), tmp_path)
    assert [line.name for line in checked.lines] == ["werkzeug", "plugdock-sdk"]
    assert checked.wheels[0].wheel is not None and checked.wheels[0].wheel.path.name == WHEEL.filename
    for old in ("plugdock>=0.1", "plugdock-sdk"):
        with pytest.raises(RequirementsRefused) as refused:
            check_requirements(f"{old}\n".encode(), tmp_path)
        assert "requirements.txt:1:" in str(refused.value) and "where plugdock is not published" in str(refused.value)


# -- pyproject.toml ---------------------------------------------------------------------------------------

PYPROJECT = """[project]
name = "demo"
version = "0.0.1"
requires-python = ">=3.11"
# what the plugin needs
dependencies = ["werkzeug>=3.0", "plugdock>=0.1"]
"""


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_a_pyproject_is_pointed_at_the_wheel_through_uv_sources() -> None:
    files = ship_runtime([("pyproject.toml", PYPROJECT.encode())])
    project = tomllib.loads(dict(files)["pyproject.toml"].decode())
    assert sorted(project["project"]["dependencies"]) == ["plugdock-sdk", "werkzeug>=3.0"]
    assert project["tool"]["uv"]["sources"]["plugdock-sdk"] == {"path": WHEEL.package_path}
    assert "# what the plugin needs" in dict(files)["pyproject.toml"].decode()  # uv edits, it does not rewrite
    assert dict(files)[WHEEL.package_path] == WHEEL.data


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_uv_gets_a_working_interpreter_when_path_starts_with_broken_pyenv_shims(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyenv machine whose global version is not the project's: ``python3.12`` on PATH is a shim that fails
    (``pyenv: python3.12: command not found``, exit 127). uv's own search takes it; plugdock hands uv the
    interpreter ``validate`` finds (pyenv's versions) instead, so ``package`` works where ``validate`` did."""
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.12", "python3.13", "python3", "python"):
        (shims / name).write_text(f"#!/bin/sh\necho 'pyenv: {name}: command not found' >&2\nexit 127\n")
        (shims / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("UV_PYTHON", raising=False)
    needs_312 = PYPROJECT.replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    files = dict(ship_runtime([("pyproject.toml", needs_312.encode())]))
    assert "plugdock-sdk" in tomllib.loads(files["pyproject.toml"].decode())["project"]["dependencies"]


def test_a_pyproject_asking_for_another_plugdock_is_refused() -> None:
    with pytest.raises(PackageError, match="pyproject.toml: project.dependencies: the plugin asks for plugdock>=5"):
        ship_runtime([("pyproject.toml", PYPROJECT.replace("plugdock>=0.1", "plugdock>=5").encode())])


# -- the official daemon's install, reproduced ----------------------------------------------------------------

MODEL = {"provider": "p", "model": "m", "model_type": "llm", "mode": "chat", "completion_params": {}}
LLM = {"type": "model", "action": "invoke_llm", "provider": "demo", "model_type": "llm", "model": "demo-echo",
       "credentials": {}, "prompt_messages": [{"role": "user", "content": "a b"}], "model_parameters": {},
       "tools": [], "stop": [], "stream": True}
REQUESTS: dict[str, dict[str, Any]] = {
    "tool": {"type": "tool", "action": "invoke_tool", "provider": "demo", "tool": "demo", "credentials": {},
             "tool_parameters": {"text": "x"}},
    "model": LLM,
    "extension": {"type": "endpoint", "action": "invoke_endpoint", "settings": {},
                  "raw_http_request": binascii.hexlify(serialize_request("GET", "/hello", {}, b"")).decode()},
    "agent-strategy": {"type": "agent_strategy", "action": "invoke_agent_strategy", "agent_strategy_provider": "demo",
                       "agent_strategy": "demo", "agent_strategy_params": {"model": MODEL, "query": "q"}},
}


def llm_answer(plugin: PluginProcess, session_id: str, invoke: dict[str, Any]) -> None:
    rid = invoke["backwards_request_id"]
    plugin.backwards(session_id, rid, "response", {"model": "m", "delta": {"index": 0, "message": {
        "role": "assistant", "content": "answer", "tool_calls": []}}}, "stream")
    plugin.backwards(session_id, rid, "end")


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


def install_as_the_official_daemon(package: bytes, folder: Path, cache: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(package)).extractall(folder)
    uv = uv_binary()
    assert uv is not None
    env = official_daemon_env(folder, cache)
    for cmd in official_install_commands(folder, uv):
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{cmd[1:]}: {done.stderr[-3000:]}"
    return folder / ".venv" / "bin" / "python"


def serve_one_request(folder: Path, python: Path, request: dict[str, Any]) -> list[dict[str, Any]]:
    # the daemon's environment (cmd.Environ()) plus INSTALL_METHOD and PATH; the test's own Python stays out
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    plugin = PluginProcess(folder, python=str(python), env=env)
    try:
        plugin.ready()
        messages = plugin.session(plugin.request(request), answer=llm_answer)
    finally:
        plugin.close()
    assert "error" not in [m["type"] for m in messages], messages
    assert stream_data(messages)
    return messages


def where_plugdock_comes_from(python: Path) -> str:
    probe = "import importlib.util, plugdock; print(plugdock.__file__, importlib.util.find_spec('plugdock.cli'))"
    return subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "method"), KINDS, ids=[f"{k}-{m}" for k, m in KINDS])
def test_an_init_plugin_installs_and_answers_as_the_official_daemon_runs_it(
    kind: str, method: str, tmp_path: Path, uv_cache: Path
) -> None:
    built = build_package(make_plugin(tmp_path / "src", kind, "demo", method))
    python = install_as_the_official_daemon(built.data, tmp_path / "installed", uv_cache)
    found = where_plugdock_comes_from(python)
    assert str(tmp_path / "installed" / ".venv") in found and found.rstrip().endswith("None")  # lean: no CLI
    serve_one_request(tmp_path / "installed", python, REQUESTS[kind])


@pytest.mark.slow
@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
@pytest.mark.parametrize("locked", [False, True], ids=["pyproject", "pyproject+uv.lock"])
def test_a_pyproject_plugin_installs_with_uv_sync_as_the_official_daemon_runs_it(
    locked: bool, tmp_path: Path, uv_cache: Path
) -> None:
    plugin = make_plugin(tmp_path / "src")
    (plugin / "requirements.txt").unlink()
    (plugin / "pyproject.toml").write_text(PYPROJECT.replace('"werkzeug>=3.0", ', ""))
    if locked:  # an author's lock, made with plugdock from wherever they had it: here, this checkout
        (plugin / "pyproject.toml").write_text(PYPROJECT.replace('"werkzeug>=3.0", ', "")
                                               + f'\n[tool.uv.sources]\nplugdock = {{ path = "{REPO}" }}\n')
        uv = uv_binary()
        assert uv is not None
        done = subprocess.run([uv, "lock", "-q"], cwd=plugin, capture_output=True, text=True, check=False,
                              env={**os.environ, "UV_CACHE_DIR": str(uv_cache)})
        assert done.returncode == 0, done.stderr
    built = build_package(plugin)
    assert WHEEL.package_path in built.files and ("uv.lock" in built.files) is locked
    python = install_as_the_official_daemon(built.data, tmp_path / "installed", uv_cache)
    assert str(tmp_path / "installed" / ".venv") in where_plugdock_comes_from(python)
    serve_one_request(tmp_path / "installed", python, REQUESTS["tool"])



# -- the README flow, from a wheel-installed plugdock -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_the_readme_flow_works_from_a_wheel_in_a_fresh_venv(tmp_path: Path, uv_cache: Path) -> None:
    """No checkout on the path: build plugdock's wheel, install it with [daemon] in a new venv, and walk the quick
    start and the daemon as a user does, in a folder of their own."""
    uv = uv_binary()
    assert uv is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST"))}
    env["UV_CACHE_DIR"] = str(uv_cache)

    def run(*cmd: str | Path, cwd: Path = tmp_path) -> str:
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout

    run(uv, "build", "--wheel", "-q", "-o", tmp_path / "dist", REPO)
    (built,) = (tmp_path / "dist").glob("plugdock-*.whl")
    run(uv, "venv", "-q", "-p", sys.executable, tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    run(uv, "pip", "install", "-q", "--python", python, f"{built}[daemon]")
    plugdock = tmp_path / "venv" / "bin" / "plugdock"
    work = tmp_path / "work"
    work.mkdir()
    assert "site-packages" in run(python, "-c", "import plugdock; print(plugdock.__file__)", cwd=work)

    run(plugdock, "init", "weather", "--kind", "tool", "--name", "weather", "--author", "acme", "-y", cwd=work)
    run(plugdock, "validate", "weather", cwd=work)
    assert "hi" in run(plugdock, "invoke", "weather", "tool", "echo", "-p", "text=hi", cwd=work)
    assert "acme/weather:0.0.1@" in run(plugdock, "package", "weather", "-o", "weather.difypkg", cwd=work)

    daemon = DaemonProcess(tmp_path / "home", python=str(python))
    (work / "server.key").write_text(KEY)
    daemon.start()
    try:
        installed = run(plugdock, "install", "weather.difypkg", "--daemon", daemon.url, "--key-file", "server.key",
                        "--tenant", "t1", cwd=work)
        assert "installed" in installed
        events = daemon.dispatch("tool/invoke", "acme/weather", {"provider": "weather", "tool": "echo",
                                                                  "credentials": {}, "tool_parameters": {"text": "hi"}})
        assert [e["data"]["message"] for e in events] == [{"text": "hi"}, {"json_object": {"length": 2, "text": "hi"}}]
    finally:
        daemon.stop()
