"""plugdock publish check: each Marketplace check by name, on plugin folders and on packages."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from fake_github import FakeGitHub
from plugdock.cli.main import cli
from plugdock.packaging.build import build_package
from plugdock.publishing.checks import DIFY_DEFAULT_ICON, TEMPLATE_ICON_MARKER, check_created_at
from plugdock.publishing.icon import plugin_icon_svg
from plugdock.publishing.run import run_checks
from plugdock.publishing.source import load_candidate

from conftest import make_plugin

FAST = ["--no-resolve", "--no-install"]
SCAFFOLD_ICON = (Path(__file__).parent.parent / "src" / "plugdock" / "cli" / "scaffolds" / "all" / "_assets"
                 / "icon.svg").read_bytes()


def fill_in(root: Path) -> Path:
    """What an author adds to a scaffold before submitting: their own contact and setup and usage notes (the
    scaffold already names a repository and a contact, and draws the plugin an icon of its own)."""
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("contact: tester@users.noreply.github.com",
                                                     "contact: tester@example.com"))
    readme = root / "README.md"
    readme.write_text(readme.read_text() + "\n## Setup and usage\n\nRun `plugdock invoke . tool demo`.\n")
    assert (root / "_assets" / "icon.svg").read_text() == plugin_icon_svg("tester", "demo")
    return root


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    return fill_in(make_plugin(tmp_path / "demo"))


def results(source: Path, **kw: object) -> dict[str, object]:
    out = run_checks(load_candidate(source), resolve=False, install=False, **kw)  # type: ignore[arg-type]
    return {r.name: r for r in out}


def test_a_filled_in_scaffold_passes_every_local_check(ready: Path) -> None:
    result = CliRunner().invoke(cli, ["publish", "check", str(ready), "--json", *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["package"] == "demo-0.0.1.difypkg"
    names = [c["name"] for c in report["checks"]]
    assert names[:4] == ["pkg_paths", "required_files", "manifest_author", "manifest_metadata"]
    assert {"plugin_icon", "readme_metadata", "created_at", "version_exists", "package_dependencies",
            "sdk_version", "package_contents", "package_size", "plugin_deps", "plugin_install"} <= set(names)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["version_exists"] == statuses["plugin_install"] == statuses["plugin_deps"] == "skipped"


def test_the_raw_scaffold_passes_every_local_check(tmp_path: Path) -> None:
    """issue 19: the scaffold names a repository and a contact, links the repository and has an icon of its own."""
    plugin = make_plugin(tmp_path / "demo")
    found = results(plugin)
    assert not {name for name, r in found.items() if not r.ok}  # type: ignore[attr-defined]


def test_cjk_in_readme_is_reported_with_its_line_but_not_inside_code(ready: Path) -> None:
    readme = ready / "README.md"
    readme.write_text(readme.read_text() + "\n```\n示例输出\n```\n\nline\n这是中文说明\n")
    first_cjk = readme.read_text().splitlines().index("这是中文说明") + 1
    r = results(ready)["readme_metadata"]
    assert not r.ok and r.file == "README.md" and r.line == first_cjk  # type: ignore[attr-defined]
    assert "found 6 CJK characters" in r.message  # type: ignore[attr-defined]


@pytest.mark.parametrize("author", ["langgenius", "my-dify-team"])
def test_author_naming_dify_or_langgenius_fails(ready: Path, author: str) -> None:
    manifest = ready / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("author: tester", f"author: {author}"))
    r = results(ready)["manifest_author"]
    lines = manifest.read_text().splitlines()
    assert not r.ok and r.line == lines.index(f"author: {author}") + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("icon", [f"<svg><!-- {TEMPLATE_ICON_MARKER} --></svg>",
                                  DIFY_DEFAULT_ICON.replace("><", ">\n  <")])
def test_template_icons_fail(ready: Path, icon: str) -> None:
    (ready / "_assets" / "icon.svg").write_text(icon)
    r = results(ready)["plugin_icon"]
    assert not r.ok and r.file == "_assets/icon.svg"  # type: ignore[attr-defined]


def test_generated_icons_differ_by_plugin_and_are_stable() -> None:
    assert plugin_icon_svg("a", "one") == plugin_icon_svg("a", "one") != plugin_icon_svg("a", "two")


def test_publish_icon_replaces_the_scaffold_icon(tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "demo")
    (plugin / "_assets" / "icon.svg").write_bytes(SCAFFOLD_ICON)  # an older plugin, made before init drew icons
    assert not results(plugin)["plugin_icon"].ok  # type: ignore[attr-defined]
    assert CliRunner().invoke(cli, ["publish", "icon", str(plugin)]).exit_code == 0
    assert results(plugin)["plugin_icon"].ok  # type: ignore[attr-defined]


def test_privacy_must_point_at_a_non_empty_policy(ready: Path) -> None:
    (ready / "PRIVACY.md").write_text("   \n")
    assert "privacy policy file is empty" in results(ready)["manifest_privacy"].message  # type: ignore[attr-defined]
    (ready / "PRIVACY.md").write_text("We collect nothing.\n")
    manifest = ready / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("privacy: PRIVACY.md", "privacy: docs/POLICY.md"))
    r = results(ready)["manifest_privacy"]
    assert not r.ok and "missing file: docs/POLICY.md" in r.message and r.file == "manifest.yaml"  # type: ignore[attr-defined]


def test_created_at_in_the_future_fails(ready: Path) -> None:
    candidate = load_candidate(ready)
    past = dt.datetime.fromisoformat(str(candidate.manifest["created_at"]).replace("Z", "+00:00"))
    assert check_created_at(candidate).ok
    r = check_created_at(candidate, now=past - dt.timedelta(days=1))
    assert not r.ok and r.file == "manifest.yaml" and r.line and "in the future" in r.message


def _repack(package: bytes, changes: dict[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name not in changes:
                dst.writestr(name, src.read(name))
        for name, data in changes.items():
            if data is not None:
                dst.writestr(name, data)
    return out.getvalue()


def test_a_package_with_development_artifacts_or_missing_files_fails(ready: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "demo.difypkg"
    pkg.write_bytes(_repack(build_package(ready).data, {".env": b"KEY=1", "README.md": None}))
    found = results(pkg)
    assert "blocked file: .env" in found["package_contents"].message  # type: ignore[attr-defined]
    assert not found["required_files"].ok and found["required_files"].file == "README.md"  # type: ignore[attr-defined]


def test_requirements_policy_and_sdk_floor(ready: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "old.difypkg"
    base = build_package(ready).data
    with zipfile.ZipFile(io.BytesIO(base)) as z:
        wheels = {n: None for n in z.namelist() if n.startswith("wheels/")}
    pkg.write_bytes(_repack(base, {**wheels, "requirements.txt": b"dify_plugin>=0.4.0,<0.5\nrequests\n"
                                                                b"foo @ git+https://example.com/foo\n"}))
    found = results(pkg)
    deps, sdk = found["package_dependencies"], found["sdk_version"]
    assert not deps.ok and deps.line == 2  # type: ignore[attr-defined]
    assert "git-based install is not allowed" in deps.message  # type: ignore[attr-defined]
    assert not sdk.ok and sdk.line == 1 and ">= 0.9.0" in sdk.message  # type: ignore[attr-defined]


def test_a_package_packed_inside_breaks_the_one_package_rule(ready: Path) -> None:
    (ready / "old.difypkg").write_bytes(b"PK")
    assert results(ready)["pkg_paths"].ok  # type: ignore[attr-defined]  # the scaffold's .difyignore leaves it out
    (ready / ".difyignore").write_text("")
    r = results(ready)["pkg_paths"]
    assert not r.ok and r.file == "old.difypkg"  # type: ignore[attr-defined]


def test_version_exists_asks_the_marketplace_and_github(ready: Path) -> None:
    with FakeGitHub() as gh:
        assert results(ready, marketplace_url=gh.api_url)["version_exists"].ok  # type: ignore[attr-defined]
        gh.marketplace.add("tester/demo/0.0.1")
        r = results(ready, marketplace_url=gh.api_url)["version_exists"]
        assert not r.ok and "already exists in the marketplace" in r.message  # type: ignore[attr-defined]
        answer = {"v0.0.1": "demo-0.0.1.difypkg"}
        r = results(ready, released=lambda tag, asset: answer.get(tag) == asset)["version_exists"]
        assert not r.ok and "release v0.0.1 already carries demo-0.0.1.difypkg" in r.message  # type: ignore[attr-defined]


def test_the_text_report_names_each_check_and_exits_1_on_failure(tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "demo")
    (plugin / "_assets" / "icon.svg").write_bytes(SCAFFOLD_ICON)
    result = CliRunner().invoke(cli, ["publish", "check", str(plugin), *FAST])
    assert result.exit_code == 1
    assert "FAIL    plugin_icon" in result.stdout and "[_assets/icon.svg]" in result.stdout
    assert "PASS    manifest_author" in result.stdout


@pytest.mark.slow
def test_full_check_resolves_and_installs_in_a_throwaway_daemon(ready: Path) -> None:
    result = CliRunner().invoke(cli, ["publish", "check", str(ready), "--json"])
    report = json.loads(result.stdout)
    statuses = {c["name"]: (c["status"], c["message"]) for c in report["checks"]}
    assert statuses["plugin_deps"][0] == "pass", statuses["plugin_deps"]
    assert statuses["plugin_install"][0] == "pass", statuses["plugin_install"]
    assert "it starts and its declaration loads (tool)" in statuses["plugin_install"][1]
    assert result.exit_code == 0


@pytest.mark.slow
def test_a_plugin_that_cannot_start_fails_the_install_check(ready: Path) -> None:
    (ready / "main.py").write_text("raise SystemExit('broken on purpose')\n")
    r = run_checks(load_candidate(ready), resolve=False)[-1]
    assert r.name == "plugin_install" and not r.ok, r.message
    assert "does not start" in r.message and "broken on purpose" in r.message


def test_version_exists_asks_a_plugdock_registry(ready: Path, tmp_path: Path) -> None:
    """The self-hosted registry answers the pre-check's question as the Marketplace does."""
    from test_registry import Registry, publish

    server = Registry(tmp_path / "registry")
    try:
        assert results(ready, marketplace_url=server.url)["version_exists"].ok  # type: ignore[attr-defined]
        code, output = publish(server.url, ready)
        assert code == 0, output
        r = results(ready, marketplace_url=server.url)["version_exists"]
        assert not r.ok and "already exists in the marketplace" in r.message  # type: ignore[attr-defined]
    finally:
        server.stop()


def test_python_that_does_not_parse_is_named_with_its_line(ready: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "broken.difypkg"
    pkg.write_bytes(_repack(build_package(ready).data, {"tools/extra.py": b"x = 1\ndef broken(:\n"}))
    r = results(pkg)["python_compile"]
    assert not r.ok and r.file == "tools/extra.py" and r.line == 2  # type: ignore[attr-defined]
