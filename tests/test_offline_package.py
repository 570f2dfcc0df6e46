"""``plugdock package --offline``: every dependency a hash-pinned wheel inside the package, installed by a daemon
whose package index is unreachable.

Building needs the package index (that is where the wheels come from); installing must not.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon_harness import DaemonProcess
from plugdock.cli.main import cli
from plugdock.daemon.plugins.requirements_policy import check_requirements
from plugdock.errors import PackageError, PackageLimitExceeded
from plugdock.packaging.offline import Target, _marker, build_offline_package
from plugdock.packaging.uv import uv_binary

pytestmark = pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, every connection is refused


def files_of(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {name: archive.read(name) for name in archive.namelist()}


def plugin_with(tmp_path: Path, requirements: str) -> Path:
    plugin = tmp_path / "echo_tool"
    shutil.copytree(EXAMPLES / "echo_tool", plugin)
    (plugin / "requirements.txt").write_text(requirements)
    return plugin


def test_platform_tags_map_to_uv_platforms_and_markers() -> None:
    assert Target.parse("manylinux2014_x86_64") == Target(
        "manylinux2014_x86_64", "x86_64-manylinux2014", "sys_platform == 'linux' and platform_machine == 'x86_64'")
    assert Target.parse("manylinux_2_28_aarch64").uv_platform == "aarch64-manylinux_2_28"
    assert Target.parse("musllinux_1_2_x86_64").uv_platform == "x86_64-unknown-linux-musl"
    assert Target.parse("macosx_11_0_arm64").marker == "sys_platform == 'darwin' and platform_machine == 'arm64'"
    assert Target.parse("win_amd64").uv_platform == "x86_64-pc-windows-msvc"
    with pytest.raises(PackageError, match="--platform 'linux-x86': not a wheel platform tag"):
        Target.parse("linux-x86")


def test_a_wheel_every_platform_uses_has_no_marker_and_one_some_use_names_them() -> None:
    targets = [Target.parse("manylinux2014_x86_64"), Target.parse("manylinux2014_aarch64")]
    assert _marker({"manylinux2014_x86_64", "manylinux2014_aarch64"}, targets) == ""
    assert _marker({"manylinux2014_aarch64"}, targets) == "sys_platform == 'linux' and platform_machine == 'aarch64'"


def test_every_dependency_becomes_a_pinned_wheel_line_the_policy_accepts(tmp_path: Path) -> None:
    plugin = plugin_with(tmp_path, "plugdock>=0.1\nPyYAML>=6\n")
    built, report = build_offline_package(plugin, ["manylinux2014_x86_64", "manylinux2014_aarch64"], "3.12")
    files = files_of(built.data)
    lines = [line for line in files["requirements.txt"].decode().splitlines() if not line.startswith("#")]
    assert lines and all(" @ ./wheels/" in line and "--hash=sha256:" in line for line in lines)
    assert sum("plugdock-sdk @ ./wheels/plugdock_sdk-" in line for line in lines) == 1
    pyyaml = [line for line in lines if line.startswith("pyyaml @")]
    assert len(pyyaml) == 2 and {"platform_machine == 'x86_64'" in line for line in pyyaml} == {True, False}
    assert any(line.startswith("pydantic @") and ";" not in line for line in lines)  # pure Python: one for all
    assert set(report.wheels) <= set(files) and report.platforms == ["manylinux2014_x86_64", "manylinux2014_aarch64"]
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(built.data)).extractall(unpacked)
    checked = check_requirements(files["requirements.txt"], unpacked)
    assert len(checked.wheels) == len(lines)  # every line a shipped wheel: nothing for an index to serve


def test_a_dependency_with_no_wheel_for_the_platform_is_named(tmp_path: Path) -> None:
    plugin = plugin_with(tmp_path, "plugdock>=0.1\npywin32>=306\n")
    with pytest.raises(PackageError) as refused:
        build_offline_package(plugin, ["manylinux2014_x86_64"], "3.12")
    assert "pywin32" in refused.value.message and "has no wheel for manylinux2014_x86_64 and Python 3.12" in \
        refused.value.message


def test_the_size_is_reported_against_the_limit(tmp_path: Path) -> None:
    plugin = plugin_with(tmp_path, "plugdock>=0.1\n")
    with pytest.raises(PackageLimitExceeded, match=r"over the 1048576-byte limit .*largest files: wheels/"):
        build_offline_package(plugin, ["manylinux2014_x86_64"], "3.12", max_size=1024 * 1024)
    result = CliRunner().invoke(cli, ["package", str(plugin), "--offline", "--python", "3.12",
                                      "-o", str(tmp_path / "p.difypkg")])
    assert result.exit_code == 0, result.output
    assert "wheel(s)" in result.output and "of the 50.0 MiB limit" in result.output


def test_platform_without_offline_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["package", str(EXAMPLES / "echo_tool"), "--platform", "win_amd64"])
    assert result.exit_code == 1 and "add --offline" in result.output


@pytest.mark.slow
def test_a_daemon_with_no_reachable_index_installs_and_runs_it(tmp_path: Path) -> None:
    plugin = plugin_with(tmp_path, "plugdock>=0.1\n")
    built, _ = build_offline_package(plugin, [], None)  # the host's platform, the manifest's Python
    daemon = DaemonProcess(tmp_path / "home", UV_INDEX_URL=UNREACHABLE, UV_DEFAULT_INDEX=UNREACHABLE,
                           PIP_INDEX_URL=UNREACHABLE, UV_NO_CONFIG="1",
                           UV_FIND_LINKS="", UV_EXTRA_INDEX_URL="")
    daemon.start()
    try:
        identifier = daemon.upload(built.data)
        started = daemon.data(daemon.client.post("/plugin/t1/management/install/identifiers", json={
            "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
        task = daemon.finished_task(started["task_id"])
        assert task["status"] == "success", task["plugins"][0]["message"]
        events = daemon.dispatch("tool/invoke", "plugdock/echo_tool", {
            "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "air gap"}})
        assert events[0]["data"]["message"] == {"text": "air gap"}
    finally:
        daemon.stop()


@pytest.mark.slow
def test_the_official_daemons_install_with_an_unreachable_mirror_takes_it_too(tmp_path: Path) -> None:
    """setup_python_environment.go: ``uv venv .venv --python 3.12``, then ``uv pip install -i MIRROR -r
    requirements.txt`` in the plugin folder (PIP_MIRROR_URL set: here to a port nobody listens on)."""
    import subprocess

    from bench.environments import official_daemon_env

    from test_shipped_runtime import REQUESTS, serve_one_request

    from conftest import make_plugin

    built, _ = build_offline_package(make_plugin(tmp_path / "src"), [], "3.12")  # a plugdock init tool plugin
    folder = tmp_path / "installed"
    zipfile.ZipFile(io.BytesIO(built.data)).extractall(folder)
    uv = uv_binary()
    assert uv is not None
    env = official_daemon_env(folder, tmp_path / "empty-cache")
    for cmd in ([uv, "venv", ".venv", "--python", "3.12"], [uv, "pip", "install", "-i", UNREACHABLE, "-r",
                                                             "requirements.txt"]):
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{cmd[1:]}: {done.stderr[-3000:]}"
    serve_one_request(folder, folder / ".venv" / "bin" / "python", REQUESTS["tool"])
