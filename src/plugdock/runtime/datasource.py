"""Datasource actions: the official request model's six ``datasource`` actions and OAuth for datasource providers.

Answers are what the official SDK writes, chunk for chunk: ``{"result": true}`` for credentials, each
``WebsiteCrawlMessage`` a crawl yields, one ``DatasourceGetPagesResponse`` / ``OnlineDriveBrowseFilesResponse``,
and the ``DatasourceMessage`` stream of page or file content, blobs whole (the official SDK splits only tool
messages into ``blob_chunk``s). Loaded from the plugin's YAML when the executor starts, so a missing class
stops the plugin at start-up with the file named, as every other kind does.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.runtime.actions import (
    Handler,
    NotFoundError,
    for_providers,
    need,
    oauth_credentials_answer,
    oauth_refreshed_answer,
    raw_http_request,
)
from plugdock.runtime.iteration import drain_async
from plugdock.runtime.registry import PluginRegistry, RegistryError, load_class, read_yaml
from plugdock.sdk.session import Session

# The daemon's dispatch/datasource/<route> names for the official actions (PluginTestClient takes either).
ROUTE_ACTIONS = {
    "validate_credentials": "validate_datasource_credentials",
    "get_website_crawl": "invoke_website_datasource_get_crawl",
    "get_online_document_pages": "invoke_online_document_datasource_get_pages",
    "get_online_document_page_content": "invoke_online_document_datasource_get_page_content",
    "online_drive_browse_files": "invoke_online_drive_browse_files",
    "online_drive_download_file": "invoke_online_drive_download_file",
}
KIND_NAMES = {"website_crawl": "Website crawl", "online_document": "Online document", "online_drive": "Online drive"}


@dataclass
class DatasourceProviderEntry:
    name: str
    declaration: dict[str, Any]
    provider_cls: type
    provider_type: str
    datasources: dict[str, type] = field(default_factory=dict)

    @property
    def supports_oauth(self) -> bool:
        return bool(self.declaration.get("oauth_schema"))


def _source(decl: Mapping[str, Any], what: str) -> str:
    try:
        return str(decl["extra"]["python"]["source"])
    except (KeyError, TypeError):
        raise RegistryError(f"{what} has no extra.python.source (the official SDK needs it too)") from None


def load_datasource_providers(root: Path, manifest: Mapping[str, Any]) -> dict[str, DatasourceProviderEntry]:
    """Every datasource provider ``manifest.plugins.datasources`` names, with its classes by datasource name."""
    paths = (manifest.get("plugins") or {}).get("datasources") or []
    if not paths:
        return {}  # a plugin of another kind never imports pydantic for this
    from plugdock.sdk.datasource import (
        DatasourceProvider,
        OnlineDocumentDatasource,
        OnlineDriveDatasource,
        WebsiteCrawlDatasource,
    )

    bases: dict[str, type] = {"website_crawl": WebsiteCrawlDatasource, "online_document": OnlineDocumentDatasource,
                              "online_drive": OnlineDriveDatasource}
    out: dict[str, DatasourceProviderEntry] = {}
    for path in paths:
        decl = read_yaml(root, str(path))
        if not isinstance(decl, dict):
            raise RegistryError(f"{path}: expected a mapping")
        name = str(decl["identity"]["name"])
        provider_type = str(decl.get("provider_type"))
        if provider_type not in bases:
            raise RegistryError(f"{path}: provider_type {provider_type!r} is not one of {', '.join(bases)}")
        entry = DatasourceProviderEntry(name, decl, load_class(root, _source(decl, str(path)), DatasourceProvider),
                                        provider_type)
        for item in decl.get("datasources") or []:
            ds_decl = read_yaml(root, str(item))
            entry.datasources[str(ds_decl["identity"]["name"])] = load_class(
                root, _source(ds_decl, str(item)), bases[provider_type])
        out[name] = entry
    return out


def _dump(value: Any, what: str) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if not callable(dump):
        raise TypeError(f"{what} returned {type(value).__name__}; return the response model the SDK names")
    return dump()


def _each(results: Any, what: str) -> Iterator[Any]:
    if inspect.isasyncgen(results):
        results = drain_async(results)
    if results is None or not hasattr(results, "__iter__"):
        raise TypeError(f"{what} must yield its results (a generator), but returned {type(results).__name__}")
    yield from results


def _messages(results: Any, what: str) -> Iterator[dict[str, Any]]:
    from plugdock.sdk.messages import InvokeMessage

    for message in _each(results, what):
        if not isinstance(message, InvokeMessage):
            raise TypeError(f"{what} yielded {type(message).__name__}; yield messages made with "
                            "self.create_text_message(...), create_blob_message(...) and the other create_* helpers")
        yield message.to_wire()


class DatasourceActions:
    """The datasource handlers over the providers one plugin declares."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.providers = load_datasource_providers(registry.root, registry.manifest)

    def summary(self) -> list[str]:
        return [f"datasource provider {n} ({e.provider_type}): {', '.join(e.datasources)}"
                for n, e in self.providers.items()]

    def handlers(self, previous: Mapping[tuple[str, str], Handler]) -> dict[tuple[str, str], Handler]:
        """The six datasource actions, and the OAuth actions answering for datasource providers first
        (falling back to ``previous`` for every other provider)."""
        out: dict[tuple[str, str], Handler] = {
            ("datasource", "validate_datasource_credentials"): self.validate_credentials,
            ("datasource", "invoke_website_datasource_get_crawl"): self.website_crawl,
            ("datasource", "invoke_online_document_datasource_get_pages"): self.get_pages,
            ("datasource", "invoke_online_document_datasource_get_page_content"): self.get_page_content,
            ("datasource", "invoke_online_drive_browse_files"): self.browse_files,
            ("datasource", "invoke_online_drive_download_file"): self.download_file,
        }
        if not self.providers:
            return out
        for action, ours in (("get_authorization_url", self.oauth_authorization_url),
                             ("get_credentials", self.oauth_get_credentials),
                             ("refresh_credentials", self.oauth_refresh_credentials)):
            fallback = previous.get(("oauth", action))
            out[("oauth", action)] = for_providers(self.providers, ours, fallback)
        return out

    # -- lookups ----------------------------------------------------------------------------------
    def _provider(self, data: Mapping[str, Any]) -> DatasourceProviderEntry:
        name = need(data, "provider")
        entry = self.providers.get(name)
        if entry is None:
            raise NotFoundError(f"Datasource provider {name} not found")
        return entry

    def _datasource(self, session: Session, data: Mapping[str, Any], kind: str) -> Any:
        from plugdock.sdk.datasource_entities import DatasourceRuntime

        provider, name = need(data, "provider"), need(data, "datasource")
        entry = self.providers.get(provider)
        cls = entry.datasources.get(name) if entry is not None and entry.provider_type == kind else None
        if cls is None:
            raise NotFoundError(f"{KIND_NAMES[kind]} datasource {name} not found for provider {provider}")
        runtime = DatasourceRuntime(credentials=dict(need(data, "credentials", dict)), user_id=data.get("user_id"),
                                    session_id=session.session_id)
        return cls(runtime=runtime, session=session)

    # -- the six actions ------------------------------------------------------------------------
    def validate_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        self._provider(data).provider_cls().validate_credentials(need(data, "credentials", dict))
        return [{"result": True}]

    def website_crawl(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        datasource = self._datasource(session, data, "website_crawl")
        params = need(data, "datasource_parameters", dict)
        what = f"website crawl datasource {type(datasource).__name__}"
        return (_dump(m, what) for m in _each(datasource.website_crawl(params), what))

    def get_pages(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        datasource = self._datasource(session, data, "online_document")
        params = need(data, "datasource_parameters", dict)
        return [_dump(datasource.get_pages(params), f"{type(datasource).__name__}._get_pages")]

    def get_page_content(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.datasource_entities import GetOnlineDocumentPageContentRequest

        datasource = self._datasource(session, data, "online_document")
        page = GetOnlineDocumentPageContentRequest.model_validate(need(data, "page", dict))
        return _messages(datasource.get_content(page=page), f"{type(datasource).__name__}._get_content")

    def browse_files(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.datasource_entities import OnlineDriveBrowseFilesRequest

        datasource = self._datasource(session, data, "online_drive")
        request = OnlineDriveBrowseFilesRequest.model_validate(need(data, "request", dict))
        return [_dump(datasource.browse_files(request), f"{type(datasource).__name__}._browse_files")]

    def download_file(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        from plugdock.sdk.datasource_entities import OnlineDriveDownloadFileRequest

        datasource = self._datasource(session, data, "online_drive")
        request = OnlineDriveDownloadFileRequest.model_validate(need(data, "request", dict))
        return _messages(datasource.download_file(request), f"{type(datasource).__name__}._download_file")

    # -- OAuth ------------------------------------------------------------------------------------
    def _oauth_provider(self, data: Mapping[str, Any]) -> Any:
        entry = self.providers.get(need(data, "provider"))
        if entry is None or not entry.supports_oauth:
            raise ValueError(f"Provider `{data['provider']}` does not support OAuth")
        return entry.provider_cls()

    def oauth_authorization_url(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        url = self._oauth_provider(data).oauth_get_authorization_url(
            need(data, "redirect_uri"), data.get("system_credentials") or {})
        return [{"authorization_url": url}]

    def oauth_get_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        provider = self._oauth_provider(data)
        creds = provider.oauth_get_credentials(need(data, "redirect_uri"), data.get("system_credentials") or {},
                                               raw_http_request(data))
        return oauth_credentials_answer(creds)

    def oauth_refresh_credentials(self, session: Session, data: dict[str, Any]) -> Iterable[Any]:
        creds = self._oauth_provider(data).oauth_refresh_credentials(
            need(data, "redirect_uri"), data.get("system_credentials") or {}, data.get("credentials") or {})
        return oauth_refreshed_answer(creds)
