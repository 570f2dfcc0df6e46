"""publish github, install github: and publish marketplace against a loopback GitHub (tests/fake_github.py)."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon_harness import KEY, DaemonProcess
from fake_github import FakeGitHub
from plugdock.cli.main import cli
from plugdock.packaging.signature import load_public_key, verify_package
from plugdock.publishing.github import GitHub
from plugdock.publishing.release import fetch_release_package
from test_publish_check import fill_in

from conftest import make_plugin

FAST = ["--no-resolve", "--no-install"]


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo("tester/demo")
        fake.add_repo("langgenius/dify-plugins", {"README.md": b"# Dify plugins\n"})
        yield fake


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    return fill_in(make_plugin(tmp_path / "demo"))


def run(gh: FakeGitHub, *args: str, token: bool = True) -> object:
    env = {"GITHUB_API_URL": gh.api_url, "GITHUB_TOKEN": gh.token if token else None, "GH_TOKEN": None}
    return CliRunner().invoke(cli, list(args), env=env)


def test_publish_github_creates_the_release_and_uploads_to_its_upload_url(gh: FakeGitHub, plugin: Path) -> None:
    result = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stdout.strip() == "https://github.com/tester/demo/releases/tag/v0.0.1"  # type: ignore[attr-defined]
    release = gh.repos["tester/demo"].releases[0]
    assert release["tag_name"] == "v0.0.1" and not release["draft"]
    (asset_id,) = release["asset_ids"]
    assert gh.assets[asset_id]["name"] == "demo-0.0.1.difypkg"
    assert gh.assets[asset_id]["content_type"] == "application/octet-stream"
    with zipfile.ZipFile(io.BytesIO(gh.blobs[asset_id])) as z:
        assert "manifest.yaml" in z.namelist()
    posts = [(m, p) for m, p, _ in gh.log if m == "POST"]
    assert posts == [("POST", "/repos/tester/demo/releases"), ("POST", f"/repos/tester/demo/releases/"
                                                                      f"{release['id']}/assets")]
    assert all(auth == f"Bearer {gh.token}" for m, _, auth in gh.log if m == "POST")


def test_an_existing_asset_is_refused_unless_replace(gh: FakeGitHub, plugin: Path) -> None:
    assert run(gh, "publish", "github", str(plugin), "--repo", "tester/demo").exit_code == 0  # type: ignore[attr-defined]
    again = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo")
    assert again.exit_code == 1  # type: ignore[attr-defined]
    assert "already has demo-0.0.1.difypkg" in again.output and "--replace" in again.output  # type: ignore[attr-defined]
    replaced = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo", "--replace")
    assert replaced.exit_code == 0, replaced.output  # type: ignore[attr-defined]
    assert "replaced demo-0.0.1.difypkg" in replaced.output  # type: ignore[attr-defined]
    assert len(gh.repos["tester/demo"].releases) == 1
    assert [m for m, p, _ in gh.log if m == "DELETE"] == ["DELETE"]
    live = [a for a in gh.repos["tester/demo"].releases[0]["asset_ids"] if a in gh.assets]
    assert len(live) == 1


def test_assets_are_read_across_pages(gh: FakeGitHub, plugin: Path) -> None:
    """A release with more assets than one page holds: the duplicate sits on page 2, found via the Link header."""
    assert run(gh, "publish", "github", str(plugin), "--repo", "tester/demo").exit_code == 0  # type: ignore[attr-defined]
    release = gh.repos["tester/demo"].releases[0]
    for index in range(120):
        asset_id = next(gh.ids)
        gh.assets[asset_id] = {"id": asset_id, "name": f"other-{index}.txt", "size": 1}
        release["asset_ids"].insert(0, asset_id)
    again = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo")
    assert "already has demo-0.0.1.difypkg" in again.output  # type: ignore[attr-defined]
    pages = [p for m, p, _ in gh.log if p.endswith("/assets") and m == "GET"]
    assert len(pages) >= 3  # page 1 and 2 of the second run, after the first run's one page


def test_no_token_is_one_line_and_a_command_line_token_warns(gh: FakeGitHub, plugin: Path) -> None:
    missing = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo", token=False)
    assert missing.exit_code == 1 and "no GitHub token given" in missing.output  # type: ignore[attr-defined]
    bad = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo", "--token", "wrong", token=False)
    assert bad.exit_code == 1 and "HTTP 401: Bad credentials" in bad.output  # type: ignore[attr-defined]
    flagged = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo", "--token", gh.token, token=False)
    assert flagged.exit_code == 0, flagged.output  # type: ignore[attr-defined]
    assert "--token puts the GitHub token on the command line" in flagged.stderr  # type: ignore[attr-defined]


def test_key_signs_the_uploaded_package(gh: FakeGitHub, plugin: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["keygen", "--name", "me", "--dir", str(tmp_path), "--bits", "2048"]).exit_code == 0
    key = str(tmp_path / "me.private.pem")
    result = run(gh, "publish", "github", str(plugin), "--repo", "tester/demo", "--key", key)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    (asset_id,) = gh.repos["tester/demo"].releases[0]["asset_ids"]
    from plugdock.packaging.archive import PackageArchive

    info = verify_package(PackageArchive.open(gh.blobs[asset_id]), [load_public_key(tmp_path / "me.public.pem")])
    assert info.key_index == 0


def test_fetch_follows_the_storage_redirect_without_the_token(gh: FakeGitHub, plugin: Path) -> None:
    assert run(gh, "publish", "github", str(plugin), "--repo", "tester/demo").exit_code == 0  # type: ignore[attr-defined]
    with GitHub(gh.token, gh.api_url) as client:
        name, data = fetch_release_package(client, "github:tester/demo@0.0.1")
    (asset_id,) = gh.repos["tester/demo"].releases[0]["asset_ids"]
    assert name == "demo-0.0.1.difypkg" and data == gh.blobs[asset_id]
    storage = [auth for m, p, auth in gh.log if p.startswith("/storage/")]
    assert storage == [None]
    with GitHub(None, gh.api_url) as client, pytest.raises(Exception, match="no release tagged v9.9.9"):
        fetch_release_package(client, "github:tester/demo@9.9.9")


@pytest.mark.slow
def test_install_github_installs_the_release_asset_into_a_daemon(gh: FakeGitHub, plugin: Path, tmp_path: Path) -> None:
    assert run(gh, "publish", "github", str(plugin), "--repo", "tester/demo").exit_code == 0  # type: ignore[attr-defined]
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        result = CliRunner().invoke(cli, ["install", "github:tester/demo@v0.0.1", "--daemon", daemon.url, "--tenant",
                                          "t1"], env={"GITHUB_API_URL": gh.api_url, "PLUGDOCK_KEY": KEY,
                                                      "GITHUB_TOKEN": None})
        assert result.exit_code == 0, result.output
        assert "downloaded demo-0.0.1.difypkg" in result.stderr and "installed" in result.stdout
        listed = daemon.data(daemon.client.get("/plugin/t1/management/list"))["list"]
        assert [p["plugin_id"] for p in listed] == ["tester/demo"]
    finally:
        daemon.stop()


def test_marketplace_dry_run_prints_the_plan_and_writes_nothing(gh: FakeGitHub, plugin: Path) -> None:
    result = run(gh, "publish", "marketplace", str(plugin), "--dry-run", "--marketplace-url", gh.api_url, *FAST,
                 token=False)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "fork langgenius/dify-plugins" in out and "bump-demo-plugin-0.0.1" in out
    assert "commit tester/demo/demo-0.0.1.difypkg" in out and "# Plugin Submission" in out
    assert not [m for m, _, _ in gh.log if m != "GET"]


def test_marketplace_forks_branches_commits_and_opens_the_pull_request(gh: FakeGitHub, plugin: Path) -> None:
    result = run(gh, "publish", "marketplace", str(plugin), "--marketplace-url", gh.api_url, *FAST)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stdout.strip() == "https://github.com/langgenius/dify-plugins/pull/1"  # type: ignore[attr-defined]
    fork = gh.repos["alice/dify-plugins"]
    assert fork.fork_of == "langgenius/dify-plugins"
    assert "bump-demo-plugin-0.0.1" in fork.branches
    data = fork.files[("bump-demo-plugin-0.0.1", "tester/demo/demo-0.0.1.difypkg")]
    assert data[:2] == b"PK"
    (pull,) = gh.pulls
    assert pull["head"]["label"] == "alice:bump-demo-plugin-0.0.1" and pull["base"]["ref"] == "main"
    body = pull["body"]
    assert "- **Author**: tester" in body and "- [x] New plugin" in body and "- [ ] Version update" in body
    assert "- [x] The plugin includes `PRIVACY.md`" in body and "FAIL" not in body
    assert "- [ ] I have read and comply with the Plugin Developer Agreement." in body
    assert "| plugin_icon | Check Plugin Icon | pass |" in body
    again = run(gh, "publish", "marketplace", str(plugin), "--marketplace-url", gh.api_url, *FAST)
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert again.stdout.strip() == pull["html_url"] and len(gh.pulls) == 1  # type: ignore[attr-defined]
    puts = [p for m, p, _ in gh.log if m == "PUT"]
    assert len(puts) == 2  # the second run updated the file with its sha


def test_marketplace_with_a_given_fork_and_a_version_update(gh: FakeGitHub, plugin: Path) -> None:
    gh.repos["langgenius/dify-plugins"].files[("main", "tester/demo/demo-0.0.0.difypkg")] = b"PK old"
    fork = gh.add_repo("tester/plugins-fork")
    fork.fork_of = "langgenius/dify-plugins"
    result = run(gh, "publish", "marketplace", str(plugin), "--fork", "tester/plugins-fork",
                 "--marketplace-url", gh.api_url, *FAST)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert not [p for m, p, _ in gh.log if p.endswith("/forks")]
    assert "- [x] Version update" in gh.pulls[0]["body"]
    assert gh.pulls[0]["head"]["label"] == "tester:bump-demo-plugin-0.0.1"


def test_marketplace_refuses_a_package_that_fails_the_checks(gh: FakeGitHub, plugin: Path) -> None:
    gh.marketplace.add("tester/demo/0.0.1")
    result = run(gh, "publish", "marketplace", str(plugin), "--marketplace-url", gh.api_url, *FAST)
    assert result.exit_code == 1 and "FAIL    version_exists" in result.output  # type: ignore[attr-defined]
    assert not gh.pulls and not [m for m, _, _ in gh.log if m != "GET"]


def test_put_file_carries_base64(gh: FakeGitHub) -> None:
    with GitHub(gh.token, gh.api_url) as client:
        client.put_file("tester/demo", "a/b.txt", base64.b64encode(b"hi").decode(), "add", "main")
        assert client.file_sha("tester/demo", "a/b.txt", "main") is not None
    assert gh.repos["tester/demo"].files[("main", "a/b.txt")] == b"hi"


def test_upload_reports_progress_up_to_the_whole_package(gh: FakeGitHub) -> None:
    seen: list[tuple[int, int]] = []
    with GitHub(gh.token, gh.api_url) as client:
        release = client.create_release("tester/demo", "v1.0.0", "demo 1.0.0", "")
        data = bytes(range(256)) * 1000
        asset = client.upload_asset(release["upload_url"], "big.difypkg", data, lambda s, t: seen.append((s, t)))
    assert asset["size"] == len(data) and seen[-1] == (len(data), len(data))
    assert [s for s, _ in seen] == sorted(s for s, _ in seen) and len(seen) > 1
