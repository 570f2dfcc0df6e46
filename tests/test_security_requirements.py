"""requirements.txt is the plugin author's input to a root daemon: only plain requirements and hash-pinned wheels
inside the package reach uv; builds run as the unprivileged builder uid; uv's output never reaches the API verbatim.

Unit tests cover every refused spelling of the policy; real daemons (as root) prove the key files stay out of task
messages, that sdists build as the builder (which cannot read the daemon's keys), and that shipped wheels install.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess
from plugdock.daemon.plugins.environments import EnvironmentBuildError, _take_back, summarize_uv_output
from plugdock.daemon.plugins.requirements_policy import RequirementsRefused, check_requirements, read_requirements
from plugdock.daemon.settings import load_settings
from plugdock.daemon.state.plugin_users import BUILDER
from plugdock.packaging.build import build_package

from conftest import make_plugin

AS_ROOT = os.geteuid() == 0
PROBE = "plugdock-planted-probe"  # no such project on PyPI: only the test's own index has it, as an sdist


def make_wheel(folder: Path, name: str, version: str, files: dict[str, str], requires_python: str = "") -> Path:
    """A minimal valid pure-Python wheel (METADATA, WHEEL, RECORD)."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    requires = f"Requires-Python: {requires_python}\n" if requires_python else ""
    entries = {**files,
               f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}",
               f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")

    record = "".join(f"{path},sha256={digest(text)},{len(text.encode())}\n" for path, text in entries.items())
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in {**entries, f"{dist}/RECORD": record + f"{dist}/RECORD,,\n"}.items():
            archive.writestr(path, text)
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def plugin(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "plugin"
    wheel = make_wheel(root / "wheels", "tinyprobe", "1.0", {"tinyprobe/__init__.py": "VALUE = 'shipped'\n"})
    return root, wheel


def refused(text: str, root: Path, **policy: bool) -> str:
    with pytest.raises(RequirementsRefused) as caught:
        check_requirements(text.encode(), root, **policy)
    return caught.value.message


# -- the policy, line by line ------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "reason"), [
    ("-r /var/lib/plugdock/secret.key", "option -r reads another file"),
    ("-r/var/lib/plugdock/secret.key", "option -r reads another file"),
    ("--requirement=other.txt", "option --requirement reads another file"),
    ("-c constraints.txt", "option -c reads another file"),
    ("-e .", "option -e installs an editable source"),
    ("--editable ./src", "option --editable installs an editable source"),
    ("-i https://evil.example/simple", "option -i replaces the package index"),
    ("--index-url https://evil.example/simple", "option --index-url replaces the package index"),
    ("--extra-index-url https://evil.example/simple", "option --extra-index-url adds a package index"),
    ("--find-links /tmp", "option --find-links adds a place"),
    ("-f /tmp", "option -f adds a place"),
    ("--trusted-host evil.example", "option --trusted-host options are not accepted"),
    ("--no-binary :all:", "option --no-binary turns on source builds"),
    ("--pre", "option --pre options are not accepted"),
    ("--hash=sha256:" + "a" * 64, "--hash must follow a requirement"),
    ("six --no-deps", "only --hash=sha256:<hex> may follow a requirement, not --no-deps"),
    ("six --index-url=https://evil.example", "not --index-url"),
    ("six --hash=md5:" + "a" * 32, "hash algorithm md5 is not accepted"),
    ("six --hash=sha256:abc", "--hash=sha256: needs 64 hexadecimal digits"),
    ("pkg @ ${HOME}/x.whl", "environment variable references"),
    ("pkg @ https://evil.example/${UV_INDEX_URL}", "environment variable references"),
    ("pkg @ file:///tmp/planted", "file:// URLs name a place outside the package"),
    ("pkg @ file://localhost/tmp/x.whl", "file:// URLs name a place outside the package"),
    ("file:///tmp/x.whl", "file:// URLs name a place outside the package"),
    ("pkg @ https://example.com/pkg-1.0-py3-none-any.whl", "direct URL requirements are off"),
    ("pkg @ git+https://github.com/org/pkg", "PLUGDOCK_ALLOW_DIRECT_URLS=true"),
    ("https://example.com/pkg-1.0-py3-none-any.whl", "a URL without a package name is not accepted"),
    ("git+https://github.com/org/pkg", "a URL without a package name is not accepted"),
    ("/opt/wheels/x-1.0-py3-none-any.whl", "absolute paths are not accepted"),
    ("pkg @ /opt/wheels/x-1.0-py3-none-any.whl", "absolute paths are not accepted"),
    ("~/x-1.0-py3-none-any.whl", "only paths relative to the plugin folder"),
    ("../other/x-1.0-py3-none-any.whl", "`..` leaves the plugin folder"),
    ("./wheels/../../x-1.0-py3-none-any.whl", "`..` leaves the plugin folder"),
    ("pkg @ file:../x-1.0-py3-none-any.whl", "`..` leaves the plugin folder"),
    ("./src", "only wheels (.whl) inside the package are accepted as paths"),
    (".", "only wheels (.whl) inside the package are accepted as paths"),
    ("pkg-1.0.tar.gz", "only wheels (.whl) inside the package are accepted as paths"),
    ("pkg @ ./pkg-1.0.zip", "only wheels (.whl) inside the package are accepted as paths"),
    ("./wheels/missing-1.0-py3-none-any.whl", "is not in the package"),
    ("not a requirement !!", "not a valid requirement"),
])
def test_every_refused_spelling_names_its_line_and_reason(plugin: tuple[Path, Path], line: str,
                                                         reason: str) -> None:
    root, _ = plugin
    message = refused(f"# a comment\n\nsix>=1.0\n{line}\n", root)
    [problem] = message.splitlines()[1:]
    assert problem.startswith("requirements.txt:4: ") and reason in problem
    assert "requirements.txt:3" not in message  # the good line is not blamed


@pytest.mark.parametrize("spelling", [
    "./wheels/{w}", "wheels/{w}", "file:./wheels/{w}", "file:wheels/{w}", "tinyprobe @ ./wheels/{w}",
    "tinyprobe @ wheels/{w}", "tinyprobe @ file:./wheels/{w}",
    "tinyprobe[extra] @ ./wheels/{w} ; python_version >= '3'",
    "./wheels/{w} ; os_name == 'posix'",
])
def test_a_shipped_wheel_is_accepted_in_every_spelling_uv_reads_in_the_plugin_folder(
        plugin: tuple[Path, Path], spelling: str) -> None:
    root, wheel = plugin
    line = spelling.format(w=wheel.name) + f" --hash=sha256:{sha256(wheel)}"
    checked = check_requirements(f"{line}\n".encode(), root)
    [accepted] = checked.lines
    assert accepted.name == "tinyprobe" and accepted.wheel is not None
    assert accepted.wheel.path == wheel.resolve()
    rendered = checked.render({accepted.number: Path("/copies") / wheel.name})
    assert rendered.startswith("tinyprobe") and f"@ file:///copies/{wheel.name}" in rendered
    assert rendered.rstrip().endswith(f"--hash=sha256:{sha256(wheel)}")  # uv checks it again on the copy


def test_a_shipped_wheel_must_be_pinned_by_the_right_hash(plugin: tuple[Path, Path]) -> None:
    root, wheel = plugin
    unpinned = refused(f"./wheels/{wheel.name}\n", root)
    assert f"requirements.txt:1: a wheel shipped in the package must be pinned: add --hash=sha256:{sha256(wheel)}" \
        in unpinned
    wrong = refused(f"./wheels/{wheel.name} --hash=sha256:{'0' * 64}\n", root)
    assert f"requirements.txt:1: hash mismatch for ./wheels/{wheel.name}" in wrong
    assert f"the file is sha256:{sha256(wheel)}" in wrong
    other = refused(f"otherpkg @ ./wheels/{wheel.name} --hash=sha256:{sha256(wheel)}\n", root)
    assert "the line names otherpkg but" in other


def test_a_shipped_wheel_may_not_leave_the_folder_through_a_link(plugin: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = plugin
    outside = make_wheel(tmp_path / "outside", "escape", "1.0", {"escape/__init__.py": ""})
    (root / "wheels" / outside.name).symlink_to(outside)
    message = refused(f"./wheels/{outside.name} --hash=sha256:{sha256(outside)}\n", root)
    assert "resolves outside the plugin folder (through a link)" in message
    (root / "wheels" / "dir-1.0-py3-none-any.whl").mkdir()
    assert "is not a regular file" in refused("./wheels/dir-1.0-py3-none-any.whl --hash=sha256:" + "a" * 64, root)


def test_plain_requirements_with_markers_extras_hashes_and_continuations_pass() -> None:
    text = ("six>=1.16 ; python_version >= '3.8'   # inline comment\n"
            "requests[socks]==2.31.0 \\\n    --hash=sha256:" + "a" * 64 + " --hash sha384:" + "b" * 96 + "\n"
            "Flask_Login\n")
    checked = check_requirements(text.encode(), Path("/nonexistent"))
    assert [(line.number, line.name) for line in checked.lines] == [(1, "six"), (2, "requests"), (4, "flask-login")]
    assert checked.lines[1].hashes == ("sha256:" + "a" * 64, "sha384:" + "b" * 96)
    assert checked.render().splitlines()[1] == f"requests[socks]==2.31.0 --hash=sha256:{'a' * 64} " \
                                               f"--hash=sha384:{'b' * 96}"


def test_direct_urls_need_the_operator_and_sources_need_sdists_too(plugin: tuple[Path, Path]) -> None:
    root, _ = plugin
    wheel_url = "pkg @ https://example.com/pkg-1.0-py3-none-any.whl"
    assert check_requirements(wheel_url.encode(), root, allow_direct_urls=True).lines[0].needs_build is False
    git = "monday @ git+https://github.com/org/monday@v1"
    assert "PLUGDOCK_ALLOW_SDISTS=true" in refused(git, root, allow_direct_urls=True)
    assert check_requirements(git.encode(), root, allow_direct_urls=True, allow_sdists=True).lines[0].needs_build
    assert "URL scheme ftp: is not accepted" in refused("pkg @ ftp://example.com/x.whl", root, allow_direct_urls=True)
    # the operator's switches never open local paths outside the package
    assert "file:// URLs name a place outside" in refused("pkg @ file:///tmp/planted", root, allow_direct_urls=True,
                                                           allow_sdists=True)


def test_every_bad_line_is_reported_at_once(plugin: tuple[Path, Path]) -> None:
    root, _ = plugin
    message = refused("-r a.txt\nsix\n--index-url x\n/abs.whl\n", root)
    assert [line.split(":")[1] for line in message.splitlines()[1:]] == ["1", "3", "4"]


def test_requirements_file_is_read_without_following_a_link(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("top secret\n")
    (tmp_path / "requirements.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(RequirementsRefused, match="cannot be read as a regular file"):
        read_requirements(tmp_path)
    assert read_requirements(tmp_path / "nowhere") == b""


def test_uv_output_is_summarized_never_echoed() -> None:
    key = "gAAAAABmSecretFernetKeyContent0123456789abcdef="
    output = "\n".join([
        "Using Python 3.12.1 environment at: /home/envs/x.building",
        "error: Couldn't parse requirement in `/var/lib/plugdock/secret.key` at position 0: " + key,
        "  Caused by: Expected package name starting with an alphanumeric character, found `g`",
        key,
        "       ^^^^",
        "error: Failed to build `pkg @ file:///home/build/x.work/wheels/pkg.whl` because of " + "x" * 400,
        "  hint: see https://pypi.org/simple/pkg/ for versions",
        "      [stderr]",
        "      Traceback: print(open('/etc/shadow').read())",
    ])
    summary = summarize_uv_output(output, [Path("/home/envs/x.building"), Path("/home/build/x.work")])
    assert key not in summary
    assert "Using Python" not in summary and "[stderr]" not in summary and "Traceback" not in summary
    assert "error: Couldn't parse requirement in `/var/lib/plugdock/secret.key` [rest withheld]" in summary
    assert "file:///home/build/x.work/wheels/pkg.whl` because of xxx" in summary  # an allowed path is kept
    assert all(len(line) <= 240 for line in summary.splitlines())
    assert "hint: see https://pypi.org/simple/pkg/ for versions" in summary  # URLs are not paths
    assert summarize_uv_output("lots\nof\nnoise\n", []) == \
        "(uv printed no diagnostic; the daemon's log has its output)"


def test_operator_settings_come_from_the_environment(tmp_path: Path) -> None:
    defaults = load_settings(environ={"PLUGDOCK_HOME": str(tmp_path)})
    assert (defaults.allow_sdists, defaults.allow_direct_urls) == (False, False)
    opened = load_settings(environ={"PLUGDOCK_HOME": str(tmp_path), "PLUGDOCK_ALLOW_SDISTS": "true",
                                    "PLUGDOCK_ALLOW_DIRECT_URLS": "1"})
    assert (opened.allow_sdists, opened.allow_direct_urls) == (True, True)
    assert opened.sources["allow_sdists"] == "env PLUGDOCK_ALLOW_SDISTS"


@pytest.mark.skipif(not AS_ROOT, reason="ownership changes need root")
def test_a_build_is_taken_back_without_following_links_and_foreign_files_fail_it(tmp_path: Path) -> None:
    builder = 333333
    staging = tmp_path / "env.building"
    (staging / "lib").mkdir(parents=True)
    (staging / "lib" / "mod.py").write_text("x = 1\n")
    os.chmod(staging / "lib" / "mod.py", 0o4777)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the build's\n")
    os.chown(outside, builder, builder)
    (staging / "lib" / "link").symlink_to(outside)
    for path in (staging, staging / "lib", staging / "lib" / "mod.py", staging / "lib" / "link"):
        os.lchown(path, builder, builder)
    _take_back(staging, builder)
    assert all(os.lstat(p).st_uid == 0 for p in (staging, staging / "lib", staging / "lib" / "mod.py",
                                                   staging / "lib" / "link"))
    assert os.stat(outside).st_uid == builder  # the link's target was never touched
    assert os.stat(staging / "lib" / "mod.py").st_mode & 0o7777 == 0o755  # no set-uid, no write for others
    os.link(tmp_path / "outside.txt", staging / "lib" / "hardlinked")  # a file someone else owns
    os.chown(outside, 0, 0)
    with pytest.raises(EnvironmentBuildError, match="which is not its own"):
        _take_back(staging, builder)


# -- real daemons, as root ---------------------------------------------------------------------------------
BACKEND = '''
import base64, hashlib, os, zipfile

def _mark():
    try:
        open({secret!r}).read()
        secret = "read"
    except OSError as exc:
        secret = type(exc).__name__
    with open({marker!r}, "w") as out:
        out.write(f"{{os.getuid()}} {{secret}}")

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark()
    dist = "plugdock_planted_probe-1.0.dist-info"
    files = {{dist + "/METADATA": "Metadata-Version: 2.1\\nName: plugdock-planted-probe\\nVersion: 1.0\\n",
             dist + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    def digest(t):
        return base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).decode().rstrip("=")
    record = "".join(f"{{p}},sha256={{digest(t)}},{{len(t)}}\\n" for p, t in files.items()) + dist + "/RECORD,,\\n"
    name = "plugdock_planted_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for p, t in {{**files, dist + "/RECORD": record}}.items():
            archive.writestr(p, t)
    return name
'''


def planted_sdist(index: Path, marker: Path, secret: Path) -> None:
    """An sdist whose in-tree build backend records the uid it runs as and whether it could read ``secret``."""
    index.mkdir(mode=0o755, exist_ok=True)
    files = {
        "pyproject.toml": '[project]\nname = "plugdock-planted-probe"\nversion = "1.0"\n[build-system]\n'
                          'requires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "PKG-INFO": "Metadata-Version: 2.1\nName: plugdock-planted-probe\nVersion: 1.0\n",
        "backend.py": BACKEND.format(secret=str(secret), marker=str(marker)),
    }
    with tarfile.open(index / "plugdock_planted_probe-1.0.tar.gz", "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"plugdock_planted_probe-1.0/{name}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    os.chmod(index / "plugdock_planted_probe-1.0.tar.gz", 0o644)


def with_requirements(root: Path, text: str) -> Path:
    (root / "requirements.txt").write_text(text)
    return root


def failed_install(daemon: DaemonProcess, plugin_dir: Path, tenant: str = "t1") -> tuple[str, str]:
    """(the plugin's task message, every API answer about the task as text) of an install that must fail."""
    identifier = daemon.upload(build_package(plugin_dir).data, tenant)
    started = daemon.data(daemon.client.post(f"/plugin/{tenant}/management/install/identifiers", json={
        "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
    task = daemon.finished_task(started["task_id"], tenant)
    assert task["status"] == "failed", task
    answer = daemon.client.get(f"/plugin/{tenant}/management/install/tasks/{started['task_id']}")
    listing = daemon.client.get(f"/plugin/{tenant}/management/install/tasks", params={"page": 1, "page_size": 50})
    return str(task["plugins"][0]["message"]), answer.text + listing.text + json.dumps(task)


def daemon_with_index(tmp_path_factory: pytest.TempPathFactory, name: str, uid_base: int,
                      **env: str) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp(name)
    # a uid base of its own: builds of daemons elsewhere in the suite kill their builder's processes
    d = DaemonProcess(home, PLUGDOCK_SANDBOX_UID_BASE=str(uid_base), UV_FIND_LINKS=str(home / "index"), **env)
    d.start()
    # made after start (the start closes unknown folders in the home): in the home, so a build sees them
    # even with a private /tmp
    (home / "probe").mkdir(mode=0o777)
    os.chmod(home / "probe", 0o777)
    planted_sdist(home / "index", home / "probe" / "marker", home / "secret.key")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    yield from daemon_with_index(tmp_path_factory, "strict-home", 340000)


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    yield from daemon_with_index(tmp_path_factory, "lenient-home", 350000, PLUGDOCK_ALLOW_SDISTS="true",
                                 PLUGDOCK_ALLOW_DIRECT_URLS="true")




@pytest.mark.slow
def test_a_requirement_reading_the_daemons_key_is_refused_and_the_key_never_shown(
        strict: DaemonProcess, tmp_path: Path) -> None:
    secret = (strict.home / "secret.key").read_text().strip()
    plugin = with_requirements(make_plugin(tmp_path / "thief", name="thief"),
                               f"plugdock\n-r {strict.home / 'secret.key'}\n-c{strict.home / 'secret.key'}\n")
    message, everything = failed_install(strict, plugin)
    assert "requirements.txt:2: option -r reads another file" in message
    assert "requirements.txt:3: option -c reads another file" in message
    assert secret not in everything and secret[:12] not in everything
    assert strict.client.get("/plugin/t1/management/list", params={"page": 1, "page_size": 10}).status_code == 200


@pytest.mark.slow
def test_a_planted_local_project_is_refused_whatever_the_operator_allows(
        strict: DaemonProcess, lenient: DaemonProcess, tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted_sdist(planted, tmp_path / "planted-marker", Path("/nonexistent"))
    for daemon in (strict, lenient):
        plugin = with_requirements(make_plugin(tmp_path / f"planter-{daemon.port}", name="planter"),
                                   f"plugdock\npkg @ file://{planted}\n")
        message, _ = failed_install(daemon, plugin)
        assert "requirements.txt:2: file:// URLs name a place outside the package" in message
    assert not (tmp_path / "planted-marker").exists()


@pytest.mark.slow
def test_an_sdist_is_refused_by_default_naming_the_setting(strict: DaemonProcess, tmp_path: Path) -> None:
    plugin = with_requirements(make_plugin(tmp_path / "sdist", name="sdist"), f"plugdock\n{PROBE}==1.0\n")
    message, _ = failed_install(strict, plugin)
    assert "PLUGDOCK_ALLOW_SDISTS=true" in message
    assert f"requirements.txt:2 ({PROBE})" in message
    assert not (strict.home / "probe" / "marker").exists()  # nothing was built


@pytest.mark.slow
@pytest.mark.skipif(not AS_ROOT, reason="the builder uid exists only when the daemon runs as root")
def test_allowed_sdists_build_as_the_builder_which_cannot_read_the_daemons_keys(
        lenient: DaemonProcess, tmp_path: Path) -> None:
    plugin = with_requirements(make_plugin(tmp_path / "built", name="built"), f"plugdock\n{PROBE}==1.0\n")
    lenient.install(plugin)
    uid, secret = (lenient.home / "probe" / "marker").read_text().split()
    with sqlite3.connect(lenient.home / "plugdock.db") as db:
        uids = dict(db.execute("select unique_identifier, uid from plugin_users").fetchall())
    assert int(uid) == uids[BUILDER] != 0  # the builder, never root and never a plugin's uid
    assert list(uids.values()).count(int(uid)) == 1
    assert secret == "PermissionError"
    probe_files = f"lib/*/site-packages/{PROBE.replace('-', '_')}*"
    env = next(p for p in (lenient.home / "envs").iterdir() if list(p.glob(probe_files)))
    foreign = [p for p in [env, *env.rglob("*")] if os.lstat(p).st_uid != 0 or
               (not p.is_symlink() and os.lstat(p).st_mode & 0o022)]
    assert foreign == []  # taken back: root's, writable by nobody else
    assert list((lenient.home / "build").glob("*.work")) == []


@pytest.mark.slow
def test_a_wheel_shipped_in_the_package_installs_only_with_its_hash(strict: DaemonProcess, tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "shipped", name="shipped")
    (root / "tools" / "shipped.py").write_text(
        "import tinyprobe\nfrom plugdock.sdk import Tool\n\n\nclass T(Tool):\n"
        "    def _invoke(self, tool_parameters):\n        yield self.create_text_message(tinyprobe.VALUE)\n")
    wheel = make_wheel(root / "wheels", "tinyprobe", "1.0", {"tinyprobe/__init__.py": "VALUE = 'shipped'\n"})
    bad = with_requirements(root, f"plugdock\n./wheels/{wheel.name} --hash=sha256:{'0' * 64}\n"
                                  f"../{wheel.name}\n{wheel.resolve()}\n")
    message, _ = failed_install(strict, bad)
    assert "requirements.txt:2: hash mismatch" in message
    assert "requirements.txt:3: `..` leaves the plugin folder" in message
    assert "requirements.txt:4: absolute paths are not accepted" in message
    with_requirements(root, f"plugdock\ntinyprobe @ file:./wheels/{wheel.name} --hash=sha256:{sha256(wheel)}\n")
    strict.install(root)
    events = strict.dispatch("tool/invoke", "tester/shipped", {
        "provider": "shipped", "tool": "shipped", "credentials": {}, "tool_parameters": {}})
    assert events[0]["data"]["message"]["text"] == "shipped", events
