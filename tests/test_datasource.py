"""Datasource plugins: what validate says about bad YAML, and a real ``plugdock serve`` answering the management
and dispatch routes for an official-SDK datasource plugin and a plugdock one, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance_plugins import to_official
from daemon_harness import DaemonProcess, eventually
from datasource_plugins import datasource_plugin
from plugdock.schema.declaration import plugin_declaration
from plugdock.schema.plugin import DirectorySource, load_plugin


def problems(root: Path) -> list[str]:
    return [str(p) for p in load_plugin(DirectorySource(root)).problems]


def errors(root: Path) -> list[str]:
    return [str(p) for p in load_plugin(DirectorySource(root)).errors]


# -- validation ------------------------------------------------------------------------------------------
def test_the_scaffold_validates_and_declares_the_official_shape(tmp_path: Path) -> None:
    root = datasource_plugin(tmp_path / "d", "online_drive")
    plugin = load_plugin(DirectorySource(root))
    assert plugin.ok, plugin.problems
    declaration = plugin_declaration(plugin)
    ds = declaration["datasource"]
    assert ds["provider_type"] == "online_drive" and ds["oauth_schema"] is None
    assert ds["credentials_schema"][0]["name"] == "api_key"
    assert [d["identity"]["name"] for d in ds["datasources"]] == ["demo_ds"]
    assert "extra" not in ds and "extra" not in ds["datasources"][0]  # the daemon's struct has no extra


@pytest.mark.parametrize(("edit", "expected"), [
    (("datasources/demo_ds.yaml", "parameters: []", "parameters:\n  - name: f\n    type: files\n    label:\n"
      "      en_US: F\n    description:\n      en_US: F"),
     "datasources/demo_ds.yaml:10:11: parameters[0].type: type 'files' is accepted by the official SDK but refused"),
    (("provider/demo_ds.yaml", "provider_type: online_drive", "provider_type: local_file"),
     "provider/demo_ds.yaml:12:16: provider_type: input should be 'website_crawl', 'online_document' or"),
    (("provider/demo_ds.yaml", "    - productivity", "    - rag"),
     "provider/demo_ds.yaml:10:7: identity.tags[0]: input should be 'search'"),
    (("provider/demo_ds.yaml", "  - datasources/demo_ds.yaml", "  - identity: {}"),
     "datasources must be a list of file paths"),
    (("datasources/demo_ds.yaml", "    source: datasources/demo_ds.py", "    source: datasources/gone.py"),
     "datasources/demo_ds.yaml:17:13: extra.python.source: Python source 'datasources/gone.py' does not exist"),
    (("provider/demo_ds.yaml", "  icon: icon.svg", "  icon: missing.svg"),
     "provider/demo_ds.yaml:8:9: identity.icon: icon 'missing.svg' is not in _assets/"),
    (("manifest.yaml", "  datasources:\n", "  tools:\n    - provider/demo_ds.yaml\n  datasources:\n"),
     "datasources cannot be declared together with tools"),
])
def test_bad_declarations_are_named_with_file_line_and_field(tmp_path: Path, edit: tuple[str, str, str],
                                                             expected: str) -> None:
    root = datasource_plugin(tmp_path / "d", "online_drive")
    rel, old, new = edit
    path = root / rel
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    found = errors(root)
    assert any(expected in p for p in found), found


def test_a_datasource_without_parameters_is_a_warning(tmp_path: Path) -> None:
    root = datasource_plugin(tmp_path / "d", "online_drive")
    decl = root / "datasources" / "demo_ds.yaml"
    decl.write_text(decl.read_text().replace("parameters: []\n", ""))
    assert not errors(root)
    assert any("no parameters key; the official daemon's validator requires it" in p for p in problems(root))


# -- a real daemon ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("ds-home"), PLUGIN_MAX_EXECUTION_TIMEOUT="60").start()
    yield d
    d.stop()


def official_docs(work: Path) -> Path:
    """The online-document plugin ported to the official SDK, installed with dify-plugin from PyPI."""
    official = to_official(datasource_plugin(work / "src", "online_document", name="docs"), work / "official_docs")
    (official / "requirements.txt").write_text("dify-plugin>=0.10,<0.11\n")
    return official


@pytest.mark.slow
def test_official_sdk_datasource_plugin_through_plugdock_serve(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(official_docs(tmp_path))
    plugin_id = "tester/docs"
    rows = daemon.data(daemon.client.get("/plugin/t1/management/datasources", params={"page": 1, "page_size": 256}))
    assert [r["plugin_id"] for r in rows] == [plugin_id]
    row = rows[0]
    assert set(row) == {"id", "created_at", "updated_at", "tenant_id", "provider", "plugin_unique_identifier",
                        "plugin_id", "declaration"}
    assert row["provider"] == "docs" and row["declaration"]["provider_type"] == "online_document"
    assert row["declaration"]["oauth_schema"]["client_schema"][0]["name"] == "client_id"
    one = daemon.data(daemon.client.get("/plugin/t1/management/datasource",
                                        params={"plugin_id": plugin_id, "provider": "docs"}))
    assert one == row
    missing = daemon.client.get("/plugin/t1/management/datasource", params={"plugin_id": plugin_id, "provider": "x"})
    assert missing.json()["code"] != 0
    manifest = daemon.data(daemon.client.get("/plugin/t1/management/fetch/manifest",
                                             params={"plugin_unique_identifier": row["plugin_unique_identifier"]}))
    assert manifest["datasource"] == row["declaration"]

    creds = {"provider": "docs", "credentials": {"api_key": "good"}}
    assert daemon.dispatch("datasource/validate_credentials", plugin_id, creds) == [
        {"code": 0, "message": "success", "data": {"result": True}}]
    wrong = daemon.dispatch("datasource/validate_credentials", plugin_id, {**creds, "credentials": {"api_key": "no"}})
    assert wrong[-1]["code"] != 0 and "DatasourceCredentialValidationError" in str(wrong[-1])
    pages = daemon.dispatch("datasource/get_online_document_pages", plugin_id,
                            {**creds, "datasource": "docs", "datasource_parameters": {}})
    assert pages[0]["data"]["result"][0]["pages"][0]["page_name"] == "Page good"
    content = daemon.dispatch("datasource/get_online_document_page_content", plugin_id, {
        **creds, "datasource": "docs", "page": {"workspace_id": "w1", "page_id": "p1", "type": "page"}})
    assert [e["data"]["type"] for e in content] == ["text", "json", "variable", "blob"]
    unknown = daemon.dispatch("datasource/get_online_document_page_content", plugin_id, {
        **creds, "datasource": "nope", "page": {"workspace_id": "w1", "page_id": "p1", "type": "page"}})
    assert unknown[-1]["code"] != 0 and "nope" in str(unknown[-1])
    url = daemon.dispatch("oauth/get_authorization_url", plugin_id, {
        "provider": "docs", "redirect_uri": "https://r", "system_credentials": {"client_id": "cid"}})
    assert url[0]["data"]["authorization_url"].startswith("https://auth.example/authorize?client_id=cid")
    # the plugin survived every error: it still answers
    assert daemon.dispatch("datasource/validate_credentials", plugin_id, creds)[0]["data"] == {"result": True}


@pytest.mark.slow
def test_plugdock_drive_plugin_through_plugdock_serve(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(datasource_plugin(tmp_path / "drive", "online_drive", name="drive"))
    request = {"provider": "drive", "datasource": "drive", "credentials": {"api_key": "k"}}
    listing = daemon.dispatch("datasource/online_drive_browse_files", "tester/drive",
                              {**request, "request": {"prefix": "docs", "max_keys": 20}})
    assert listing[0]["data"]["result"][0]["files"][0]["id"] == "docs/guide.md"
    download = daemon.dispatch("datasource/online_drive_download_file", "tester/drive",
                               {**request, "request": {"id": "docs/guide.md"}})
    assert download[0]["data"]["type"] == "blob" and download[0]["data"]["meta"]["mime_type"] == "text/plain"
    bad = daemon.dispatch("datasource/online_drive_browse_files", "tester/drive", {**request, "request": {}})
    assert bad[-1]["code"] != 0
    crawl = daemon.dispatch("datasource/get_website_crawl", "tester/drive",
                            {**request, "datasource_parameters": {}})
    assert crawl[-1]["code"] != 0 and "Website crawl datasource drive not found" in str(crawl[-1])


# -- the test client -----------------------------------------------------------------------------------------
def test_plugin_test_client_runs_each_datasource_kind(tmp_path: Path) -> None:
    from plugdock.testing.client import PluginTestClient

    crawl = PluginTestClient(datasource_plugin(tmp_path / "crawl", "website_crawl"))
    result = crawl.invoke_datasource("get_website_crawl", "demo_ds", "demo_ds", {"api_key": "k"},
                                     datasource_parameters={"url": "https://x.example"})
    assert [c["result"]["status"] for c in result.raise_for_error().chunks] == ["processing", "completed"]
    assert crawl.validate_datasource_credentials("demo_ds", {"api_key": "invalid"}).error == {
        "error_type": "DatasourceCredentialValidationError", "message": "the API key is invalid"}

    docs = PluginTestClient(datasource_plugin(tmp_path / "docs", "online_document"))
    pages = docs.invoke_datasource("invoke_online_document_datasource_get_pages", "demo_ds", "demo_ds",
                                   {"api_key": "good"}, datasource_parameters={})
    assert pages.raise_for_error().chunks[0]["result"][0]["workspace_id"] == "w1"
    content = docs.invoke_datasource("get_online_document_page_content", "demo_ds", "demo_ds",
                                     page={"workspace_id": "w1", "page_id": "p1", "type": "page"})
    assert content.text == "content of p1"

    drive = PluginTestClient(datasource_plugin(tmp_path / "drive", "online_drive"))
    files = drive.invoke_datasource("online_drive_browse_files", "demo_ds", "demo_ds",
                                    request={"prefix": "docs", "max_keys": 5})
    assert files.raise_for_error().chunks[0]["result"][0]["files"][0]["name"] == "guide.md"
    missing = drive.invoke_datasource("online_drive_download_file", "demo_ds", "demo_ds", request={"id": "nope"})
    assert missing.error == {"error_type": "ValueError", "message": "no file 'nope'"}


# -- plugdock invoke ---------------------------------------------------------------------------------------
def plugdock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def test_invoke_runs_a_datasource_action_with_typed_fields(tmp_path: Path) -> None:
    root = datasource_plugin(tmp_path / "drive", "online_drive")
    listing = plugdock("invoke", ".", "datasource", "online_drive_browse_files", "-c", "api_key=k", "-p",
                       "max_keys=1", "--json", cwd=root)
    assert listing.returncode == 0, listing.stderr
    (chunk,) = [json.loads(line) for line in listing.stdout.splitlines()]
    assert chunk["result"][0]["is_truncated"] is True and len(chunk["result"][0]["files"]) == 1
    wrong = plugdock("invoke", ".", "datasource", "validate_credentials", "-c", "api_key=invalid", cwd=root)
    assert wrong.returncode == 1 and "DatasourceCredentialValidationError: the API key is invalid" in wrong.stderr
    no_key = plugdock("invoke", ".", "datasource", "online_drive_download_file", "-p", "id=x", cwd=root)
    assert no_key.returncode == 2 and "needs credential api_key (secret-input): pass -c api_key=VALUE" in no_key.stderr
    missing = plugdock("invoke", ".", "datasource", "online_drive_download_file", "-c", "api_key=k", cwd=root)
    assert missing.returncode == 2 and "needs field id (string): pass -p id=VALUE" in missing.stderr
    typed = plugdock("invoke", ".", "datasource", "online_drive_browse_files", "-c", "api_key=k", "-p",
                     "max_keys=many", cwd=root)
    assert typed.returncode == 2 and "max_keys" in typed.stderr


# -- remote debugging ---------------------------------------------------------------------------------------
def test_remote_debugging_registers_the_datasource_declaration(tmp_path: Path) -> None:
    from plugdock.daemon.http.datasources import official_declaration
    from plugdock.runtime.remote import registration_lines

    root = datasource_plugin(tmp_path / "docs", "online_document")
    lines = [json.loads(line) for line in registration_lines(root, "key")]
    (sent,) = [line["data"] for line in lines if line["type"] == "datasource_declaration"]
    assert sent == [plugin_declaration(load_plugin(DirectorySource(root)))["datasource"]]
    assert official_declaration(sent[0]) == sent[0]  # already the daemon's shape
    # what an official SDK sends over the debugging connection: its whole model, extras and all
    sdk_model = {**sent[0], "extra": {"python": {"source": "provider/demo_ds.py"}}, "help": {"en_US": "h"},
                 "datasources": [{**sent[0]["datasources"][0], "extra": {"python": {"source": "x.py"}},
                                  "output_schema": {}}]}
    cleaned = official_declaration(sdk_model)
    assert "extra" not in cleaned and "help" not in cleaned
    assert set(cleaned["datasources"][0]) == {"identity", "parameters", "description"}


@pytest.mark.slow
def test_official_sdk_datasource_over_remote_debugging(daemon: DaemonProcess, official_python: str,
                                                       tmp_path: Path) -> None:
    """The official SDK registers its whole provider model; the daemon lists it in the official shape and
    routes the datasource calls to the debugging process."""
    import os

    official = to_official(datasource_plugin(tmp_path / "src", "online_drive", name="remote_drive"),
                           tmp_path / "official")
    info = daemon.data(daemon.client.post("/plugin/t1/debugging/key"))
    env = {**os.environ, "INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": f"127.0.0.1:{info['port']}",
           "REMOTE_INSTALL_KEY": info["key"]}
    proc = subprocess.Popen([official_python, "-m", "main"], cwd=official, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def registered() -> dict[str, Any] | None:
            assert proc.poll() is None, "the debugging plugin exited before it registered"
            rows = daemon.data(daemon.client.get("/plugin/t1/management/datasources"))
            return next((r for r in rows if r["plugin_id"] == "tester/remote_drive"), None)

        row = eventually(registered, "the debugging plugin never registered")
        declaration = row["declaration"]
        assert "extra" not in declaration and "extra" not in declaration["datasources"][0]
        assert declaration["provider_type"] == "online_drive"
        files = daemon.dispatch("datasource/online_drive_browse_files", "tester/remote_drive", {
            "provider": "remote_drive", "datasource": "remote_drive", "credentials": {"api_key": "k"},
            "request": {"prefix": "", "max_keys": 5}})
        assert [f["id"] for f in files[0]["data"]["result"][0]["files"]] == ["docs", "readme.txt"]
    finally:
        proc.kill()
        proc.wait()
