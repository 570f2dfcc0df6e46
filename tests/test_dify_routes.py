"""The management routes the Dify console calls, answered in the shapes Dify's own pydantic entities read.

The entity classes below are copies of Dify's fields (the file each comes from is named above it), not our
reading of them; ``dify_call`` does what Dify's ``BasePluginClient._request_with_plugin_daemon_response``
does (api/core/plugin/impl/base.py): ``raise_for_status()``, then the envelope, then the error's
``error_type`` or the data validated as the caller's type.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field, TypeAdapter, model_validator

from daemon_harness import DaemonProcess, eventually
from plugdock.packaging.build import build_bundle, build_package

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow
URL_TEMPLATE = "https://dify.example/e/{hook_id}"  # stands for Dify's ENDPOINT_URL_TEMPLATE


# -- Dify's entities (copied fields) ------------------------------------------------------------------
class PluginDaemonBasicResponse(BaseModel):  # api/core/plugin/entities/plugin_daemon.py
    code: int
    message: str
    data: Any = None


class PluginDaemonError(BaseModel):  # api/core/plugin/entities/plugin_daemon.py
    error_type: str
    message: str


class PluginReadmeResponse(BaseModel):  # api/core/plugin/entities/plugin_daemon.py
    content: str = Field(description="The readme of the plugin.")
    language: str = Field(description="The language of the readme.")


class BasePluginEntity(BaseModel):  # api/core/plugin/entities/base.py
    id: str
    created_at: datetime
    updated_at: datetime


class EndpointDeclaration(BaseModel):  # api/core/plugin/entities/endpoint.py
    path: str
    method: str
    hidden: bool = Field(default=False)


class EndpointProviderDeclaration(BaseModel):  # api/core/plugin/entities/endpoint.py (ProviderConfig as dict)
    settings: list[dict[str, Any]] = Field(default_factory=list)
    endpoints: list[EndpointDeclaration] | None = Field(default_factory=list)


class EndpointEntity(BasePluginEntity):  # api/core/plugin/entities/endpoint.py
    settings: dict[str, Any]
    tenant_id: str
    plugin_id: str
    expired_at: datetime
    declaration: EndpointProviderDeclaration = Field(default_factory=EndpointProviderDeclaration)


class EndpointEntityWithInstance(EndpointEntity):  # api/core/plugin/entities/endpoint.py
    name: str
    enabled: bool
    url: str
    hook_id: str

    @model_validator(mode="before")
    @classmethod
    def render_url_template(cls, values: dict[str, Any]) -> dict[str, Any]:
        if "url" not in values:
            values["url"] = URL_TEMPLATE.replace("{hook_id}", values["hook_id"])
        return values


class PluginInstallationSource(StrEnum):  # api/core/plugin/entities/plugin.py
    Github = "github"
    Marketplace = "marketplace"
    Package = "package"
    Remote = "remote"


class PluginEntity(BasePluginEntity):  # api/core/plugin/entities/plugin.py (PluginInstallation + PluginEntity)
    tenant_id: str
    endpoints_setups: int
    endpoints_active: int
    runtime_type: str
    source: PluginInstallationSource
    meta: dict[str, Any]
    plugin_id: str
    plugin_unique_identifier: str
    version: str
    checksum: str
    declaration: dict[str, Any]
    name: str
    installation_id: str


class PluginMeta(BaseModel):  # api/core/plugin/entities/plugin.py, PluginDeclaration.Meta
    minimum_dify_version: str | None = Field(default=None)
    version: str | None = Field(default=None)


class PluginAgentProviderEntity(BaseModel):  # api/core/plugin/entities/plugin_daemon.py (declaration as dict)
    provider: str
    plugin_unique_identifier: str
    plugin_id: str
    declaration: dict[str, Any]
    meta: PluginMeta


class PluginBundleDependency(BaseModel):  # api/core/plugin/entities/bundle.py (manifest as dict)
    class Type(StrEnum):
        Github = "github"
        Marketplace = "marketplace"
        Package = "package"

    class Github(BaseModel):
        repo_address: str
        repo: str
        release: str
        packages: str

    class Marketplace(BaseModel):
        organization: str
        plugin: str
        version: str

    class Package(BaseModel):
        unique_identifier: str
        manifest: dict[str, Any]

    type: Type
    value: Github | Marketplace | Package


class DifyError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


def dify_call(response: httpx.Response, type_: Any) -> Any:
    """What Dify's _request_with_plugin_daemon_response makes of an answer (api/core/plugin/impl/base.py)."""
    response.raise_for_status()
    rep = PluginDaemonBasicResponse.model_validate(response.json())
    if rep.code != 0:
        error = PluginDaemonError.model_validate(json.loads(rep.message))
        raise DifyError(error.error_type, error.message)
    assert rep.data is not None, "got empty data from plugin daemon"
    return TypeAdapter(type_).validate_python(rep.data)


# -- the daemon -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def readme_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("p") / "hello_endpoint"
    shutil.copytree(EXAMPLES / "hello_endpoint", root)
    (root / "readme").mkdir()
    (root / "readme" / "README_ja_JP.md").write_text("# こんにちは\n", encoding="utf-8")
    (root / "_assets" / "diagram.txt").write_bytes(b"a file the README shows")
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, readme_plugin: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home")).start()
    d.ids = {name: d.install(EXAMPLES / name)  # type: ignore[attr-defined]
             for name in ("echo_tool", "echo_model", "single_shot_agent")}
    d.ids["hello_endpoint"] = d.install(readme_plugin)  # type: ignore[attr-defined]
    yield d
    d.stop()


def ids(d: DaemonProcess) -> dict[str, str]:
    return d.ids  # type: ignore[attr-defined,no-any-return]


# -- errors -----------------------------------------------------------------------------------------------
def test_management_errors_reach_dify_with_their_reason(daemon: DaemonProcess) -> None:
    garbage = daemon.client.post("/plugin/t1/management/install/upload/package",
                                 files={"dify_pkg": ("x.difypkg", b"garbage")})
    with pytest.raises(DifyError) as corrupt:
        dify_call(garbage, dict)
    assert corrupt.value.error_type == "PluginDaemonBadRequestError" and "not a valid .difypkg" in corrupt.value.message
    denied = daemon.client.post("/plugin/t1/endpoint/setup", json={
        "user_id": "u1", "plugin_unique_identifier": ids(daemon)["echo_tool"], "settings": {}, "name": "x"})
    with pytest.raises(DifyError) as permission:
        dify_call(denied, bool)
    assert permission.value.error_type == "PluginPermissionDeniedError"  # Dify maps this one to a 400 of its own
    missing_tool = daemon.client.get("/plugin/t1/management/tool", params={"plugin_id": "x/y", "provider": "y"})
    with pytest.raises(DifyError) as not_found:
        dify_call(missing_tool, dict)
    assert not_found.value.error_type == "PluginNotFoundError"
    # kept as they are: no key (401), an unknown route (404), a request the validator refuses (the official
    # BindRequest answers 400), and the public endpoint routes
    assert httpx.get(f"{daemon.url}/plugin/t1/management/list").status_code == 401
    assert daemon.client.get("/plugin/t1/management/nowhere/at/all").status_code == 404
    assert daemon.client.post("/plugin/t1/management/uninstall", json={}).status_code == 400
    assert httpx.get(f"{daemon.url}/e/nope/hello").status_code == 404


# -- endpoints ----------------------------------------------------------------------------------------------
def test_endpoints_list_as_dify_reads_them_and_remove_twice(daemon: DaemonProcess) -> None:
    assert dify_call(daemon.client.post("/plugin/t1/endpoint/setup", json={
        "user_id": "u1", "plugin_unique_identifier": ids(daemon)["hello_endpoint"], "settings": {"greeting": "Hi"},
        "name": "main"}), bool) is True
    raw = dify_call(daemon.client.get("/plugin/t1/endpoint/list", params={"page": 1, "page_size": 100}), list)
    assert "url" not in raw[0]  # no PLUGDOCK_PUBLIC_URL: Dify applies its ENDPOINT_URL_TEMPLATE
    listed = TypeAdapter(list[EndpointEntityWithInstance]).validate_python(raw)
    endpoint = listed[0]
    assert endpoint.url == f"https://dify.example/e/{endpoint.hook_id}"
    assert endpoint.expired_at == datetime(2050, 1, 1, tzinfo=UTC)  # the official InstallEndpoint's value
    assert [e.path for e in endpoint.declaration.endpoints or []] == ["/hello"]
    assert httpx.get(f"{daemon.url}/e/{endpoint.hook_id}/hello").text == "Hi, world!"

    def counts() -> tuple[int, int]:
        plugins = dify_call(daemon.client.get("/plugin/t1/management/list", params={"page": 1, "page_size": 256}),
                            dict)["list"]
        entry = next(PluginEntity.model_validate(p) for p in plugins if p["plugin_id"] == "plugdock/hello_endpoint")
        return entry.endpoints_setups, entry.endpoints_active

    assert counts() == (1, 1)
    dify_call(daemon.client.post("/plugin/t1/endpoint/disable", json={"endpoint_id": endpoint.id}), bool)
    assert counts() == (1, 0)

    def delete_endpoint() -> bool:  # api/core/plugin/impl/endpoint.py delete_endpoint, "record not found" tolerated
        try:
            return bool(dify_call(daemon.client.post("/plugin/t1/endpoint/remove",
                                                     json={"endpoint_id": endpoint.id}), bool))
        except DifyError as exc:
            if exc.error_type == "PluginDaemonInternalServerError" and "record not found" in exc.message.lower():
                return True
            raise

    assert delete_endpoint() is True
    assert delete_endpoint() is True  # the second time too
    assert counts() == (0, 0)


def test_public_url_is_the_endpoint_url_when_configured(readme_plugin: Path, tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path / "home", PLUGDOCK_PUBLIC_URL="https://hooks.example/").start()
    try:
        identifier = d.install(readme_plugin)
        dify_call(d.client.post("/plugin/t1/endpoint/setup", json={
            "user_id": "u1", "plugin_unique_identifier": identifier, "settings": {}, "name": "main"}), bool)
        listed = dify_call(d.client.get("/plugin/t1/endpoint/list/plugin", params={
            "plugin_id": "plugdock/hello_endpoint", "page": 1, "page_size": 10}), list[EndpointEntityWithInstance])
        assert listed[0].url == f"https://hooks.example/e/{listed[0].hook_id}"
    finally:
        d.stop()


# -- what is installed, by kind --------------------------------------------------------------------------------
def test_kind_routes(daemon: DaemonProcess) -> None:
    get = daemon.client.get
    for route in ("triggers", "datasources"):  # called by the console even with no such plugin installed
        assert dify_call(get(f"/plugin/t1/management/{route}", params={"page": 1, "page_size": 256}), list) == []
    for route in ("trigger", "datasource"):
        with pytest.raises(DifyError) as none:
            dify_call(get(f"/plugin/t1/management/{route}", params={"plugin_id": "a/b", "provider": "b"}), dict)
        assert none.value.error_type == "PluginNotFoundError"
    strategy = dify_call(get("/plugin/t1/management/agent_strategy", params={
        "plugin_id": "plugdock/single_shot_agent", "provider": "single_shot_agent"}), PluginAgentProviderEntity)
    assert strategy.meta.version == "0.0.1" and strategy.declaration["strategies"]
    exists = dify_call(daemon.client.post("/plugin/t1/management/tools/check_existence", json={"provider_ids": [
        {"plugin_id": "plugdock/echo_tool", "provider_name": "echo_tool"},
        {"plugin_id": "plugdock/echo_tool", "provider_name": "other"},
        {"plugin_id": "nobody/nothing", "provider_name": "nothing"}]}), list[bool])
    assert exists == [True, False, False]
    bindings = dify_call(get("/plugin/t1/management/models/bindings"), list[dict[str, Any]])
    assert [(b["plugin_id"], b["provider"], b["version"]) for b in bindings] == [
        ("plugdock/echo_model", "echo_model", "0.0.1")]
    assert set(bindings[0]) == {"provider", "installation_id", "plugin_id", "plugin_unique_identifier",
                                "runtime_type", "source", "version", "verified"}

    def installed(category: str) -> list[str]:
        answer = dify_call(get("/plugin/t1/management/installation/ids", params={"category": category}), dict)
        return list(answer["plugin_ids"])

    assert installed("tool") == ["plugdock/echo_tool"]
    assert installed("model") == ["plugdock/echo_model"]
    assert installed("agent-strategy") == ["plugdock/single_shot_agent"]
    assert installed("extension") == ["plugdock/hello_endpoint"]
    assert installed("trigger") == []
    with pytest.raises(DifyError, match="invalid plugin category"):
        installed("nonsense")

    def by_category(category: str, **params: Any) -> tuple[list[str], bool]:
        answer = dify_call(get(f"/plugin/t1/management/{category}/list",
                               params={"page": 1, "page_size": 256, **params}), dict)
        plugins = [PluginEntity.model_validate(p) for p in answer["list"]]
        return [p.plugin_id for p in plugins], answer["has_more"]

    assert by_category("tool") == (["plugdock/echo_tool"], False)
    assert by_category("extension", query="GREETS") == (["plugdock/hello_endpoint"], False)  # in the description
    assert by_category("model", query="nothing like it") == ([], False)
    assert by_category("agent-strategy") == (["plugdock/single_shot_agent"], False)
    assert by_category("tool", page=2, page_size=1) == ([], False)


# -- README and its files ------------------------------------------------------------------------------------
def test_readme_and_extract_asset(daemon: DaemonProcess, readme_plugin: Path) -> None:
    identifier = ids(daemon)["hello_endpoint"]

    def readme(language: str) -> PluginReadmeResponse:
        answer: PluginReadmeResponse = dify_call(daemon.client.get("/plugin/t1/management/fetch/readme", params={
            "tenant_id": "t1", "plugin_unique_identifier": identifier, "language": language}), PluginReadmeResponse)
        return answer

    assert readme("ja_JP") == PluginReadmeResponse(content="# こんにちは\n", language="ja_JP")
    english = readme("pt_BR")  # not there: en_US, from README.md
    assert english.language == "en_US" and english.content == (readme_plugin / "README.md").read_text()
    asset = daemon.client.get("/plugin/t1/extract-asset/", params={"plugin_unique_identifier": identifier,
                                                                    "file_path": "diagram.txt"})
    assert asset.status_code == 200 and asset.content == b"a file the README shows"
    absent = daemon.client.get("/plugin/t1/extract-asset/", params={"plugin_unique_identifier": identifier,
                                                                     "file_path": "nothing.png"})
    assert absent.status_code == 404 and absent.json()["code"] == -404


# -- install tasks ------------------------------------------------------------------------------------------
def test_deleting_a_task_item(daemon: DaemonProcess) -> None:
    identifier = daemon.upload(build_package(EXAMPLES / "typed_calculator").data, tenant="t3")
    started = dify_call(daemon.client.post("/plugin/t3/management/install/identifiers", json={
        "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}), dict)
    task_path = f"/plugin/t3/management/install/tasks/{started['task_id']}"
    eventually(lambda: dify_call(daemon.client.get(task_path), dict)["status"] in ("success", "failed"),
               "install did not finish")
    assert dify_call(daemon.client.post(f"{task_path}/delete/{identifier}"), bool) is True
    with pytest.raises(DifyError) as gone:  # only successes were left, so the task went with its item
        dify_call(daemon.client.get(task_path), dict)
    assert gone.value.error_type == "PluginDaemonNotFoundError"
    assert dify_call(daemon.client.post(f"{task_path}/delete/{identifier}"), bool) is True  # an unknown task


# -- bundles -------------------------------------------------------------------------------------------------
def test_bundle_members_decode_as_dify_reads_them(daemon: DaemonProcess, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    shutil.copytree(EXAMPLES / "starter_bundle", root)
    starter = daemon.client.post("/plugin/t1/management/install/upload/bundle",
                                 files={"dify_bundle": ("b", build_bundle(root))})
    decoded = dify_call(starter, list[PluginBundleDependency])  # 9 validation errors before
    assert decoded[0].value == PluginBundleDependency.Marketplace(organization="langgenius", plugin="json_process",
                                                                  version="0.0.1")
    (root / "_assets" / "echo.difypkg").write_bytes(build_package(EXAMPLES / "echo_tool").data)
    manifest = root / "manifest.yaml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("dependencies:")] + "dependencies:\n"
                        "  - type: package\n    value:\n      path: echo.difypkg\n"
                        "  - type: github\n    value:\n      repo_pattern: acme/other:0.0.2/other.difypkg\n")
    members = dify_call(daemon.client.post("/plugin/t1/management/install/upload/bundle",
                                           files={"dify_bundle": ("b", build_bundle(root))}),
                        list[PluginBundleDependency])
    assert isinstance(members[0].value, PluginBundleDependency.Package)
    assert members[0].value.unique_identifier == ids(daemon)["echo_tool"]
    assert members[1].value == PluginBundleDependency.Github(
        repo_address="https://github.com/acme/other", repo="acme/other", release="0.0.2", packages="other.difypkg")


# -- model polling -------------------------------------------------------------------------------------------
def test_model_polling_answers_one_plain_json_envelope(daemon: DaemonProcess) -> None:
    """The official StartPolling/CheckPolling answer with ctx.JSON (internal/service/model_polling.go), not SSE."""
    for route in ("start", "check"):
        path = f"/plugin/t1/dispatch/model/polling/{route}"
        body = {"user_id": "u1", "data": {"provider": "echo_model", "model_type": "llm", "model": "echo",
                                          "credentials": {}}}
        answer = daemon.client.post(path, headers={"X-Plugin-ID": "plugdock/echo_model"}, json=body)
        assert answer.headers["content-type"] == "application/json"
        envelope = answer.json()  # one JSON document: echo_model has no polling, so the plugin's error
        assert answer.status_code == 500 and envelope["code"] != 0 and envelope["data"] is None
        assert daemon.client.post(path, json=body).status_code == 400  # no X-Plugin-ID
        unknown = daemon.client.post(path, headers={"X-Plugin-ID": "x/y"}, json=body)
        assert unknown.status_code == 404
        assert json.loads(unknown.json()["message"])["error_type"] == "PluginNotFoundError"
