"""Datasource plugins of each provider type, written against plugdock (``to_official`` ports them to dify_plugin).

Each starts from ``plugdock init --kind datasource`` (an online drive) and swaps the provider type and the
datasource's code, so the three share the manifest and provider class the scaffold ships.
"""

from __future__ import annotations

from pathlib import Path

from conftest import make_plugin

CRAWL = '''
from collections.abc import Generator, Mapping
from typing import Any

from plugdock.sdk import WebsiteCrawlDatasource, WebsiteCrawlMessage, WebSiteInfo, WebSiteInfoDetail


class DemoCrawl(WebsiteCrawlDatasource):
    def _get_website_crawl(self, datasource_parameters: Mapping[str, Any],
                           ) -> Generator[WebsiteCrawlMessage, None, None]:
        url = datasource_parameters.get("url")
        if not url:
            raise ValueError("Url is required")
        info = WebSiteInfo(status="processing", web_info_list=[], total=2, completed=0)
        yield self.create_crawl_message(info)
        info.web_info_list = [WebSiteInfoDetail(source_url=url + "/" + str(i), content="é" * i, title="t" + str(i),
                                                description="d") for i in range(2)]
        info.status, info.completed = "completed", 2
        yield self.create_crawl_message(info)
'''

DOCUMENT = '''
from collections.abc import Generator, Mapping
from typing import Any

from plugdock.sdk import (
    DatasourceGetPagesResponse,
    DatasourceMessage,
    GetOnlineDocumentPageContentRequest,
    OnlineDocumentDatasource,
    OnlineDocumentInfo,
    OnlineDocumentPage,
)


class DemoDocs(OnlineDocumentDatasource):
    def _get_pages(self, datasource_parameters: Mapping[str, Any]) -> DatasourceGetPagesResponse:
        token = self.runtime.credentials.get("api_key")
        page = OnlineDocumentPage(page_id="p1", page_name="Page " + str(token), page_icon={"type": "emoji"},
                                  type="page", last_edited_time="2026-01-01T00:00:00Z")
        return DatasourceGetPagesResponse(result=[OnlineDocumentInfo(
            workspace_id="w1", workspace_name="Space", workspace_icon="", total=1, pages=[page])])

    def _get_content(self, page: GetOnlineDocumentPageContentRequest) -> Generator[DatasourceMessage, None, None]:
        if page.page_id != "p1":
            raise ValueError("no page " + page.page_id)
        yield self.create_text_message("content of " + page.page_id)
        yield self.create_json_message({"workspace_id": page.workspace_id, "page_id": page.page_id, "n": [1, 2.5]})
        yield self.create_variable_message("content", "héllo")
        yield self.create_blob_message(bytes(range(256)) * 40, meta={"mime_type": "application/octet-stream"})
'''

OAUTH_PROVIDER = '''
from collections.abc import Mapping
from typing import Any

from plugdock.sdk import DatasourceOAuthCredentials, DatasourceProvider
from plugdock.sdk.errors import DatasourceCredentialValidationError, DatasourceOAuthError


class DemoProvider(DatasourceProvider):
    def _validate_credentials(self, credentials: Mapping[str, Any]) -> None:
        if credentials.get("api_key") != "good":
            raise DatasourceCredentialValidationError("the API key is invalid")

    def _oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        client = system_credentials["client_id"]
        return "https://auth.example/authorize?client_id=" + client + "&redirect=" + redirect_uri

    def _oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                               request: Any) -> DatasourceOAuthCredentials:
        code = request.args.get("code")
        if not code:
            raise DatasourceOAuthError("no code in the callback")
        return DatasourceOAuthCredentials(name="Ada", avatar_url="https://a.example/ada.png",
                                          credentials={"access_token": "tok-" + code}, expires_at=1700000000)

    def _oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                   credentials: Mapping[str, Any]) -> DatasourceOAuthCredentials:
        return DatasourceOAuthCredentials(credentials={"access_token": credentials["access_token"] + "+"},
                                          expires_at=1800000000)
'''

OAUTH_SCHEMA = """oauth_schema:
  client_schema:
    - name: client_id
      type: text-input
      required: true
      label:
        en_US: Client ID
  credentials_schema:
    - name: access_token
      type: secret-input
      label:
        en_US: Access token
"""

CRAWL_PARAMETERS = """parameters:
  - name: url
    type: string
    required: true
    label:
      en_US: URL
    description:
      en_US: Where the crawl starts.
"""


def datasource_plugin(root: Path, kind: str = "online_drive", name: str = "demo_ds") -> Path:
    """A datasource plugin of ``kind`` (website_crawl, online_document or online_drive) named ``name``."""
    make_plugin(root, kind="datasource", name=name)
    provider = root / "provider" / f"{name}.yaml"
    text = provider.read_text().replace("provider_type: online_drive", f"provider_type: {kind}")
    if kind == "online_document":
        text = text.replace("datasources:\n", OAUTH_SCHEMA + "datasources:\n", 1)
        (root / "provider" / f"{name}.py").write_text(OAUTH_PROVIDER)
    provider.write_text(text)
    code = {"website_crawl": CRAWL, "online_document": DOCUMENT}.get(kind)
    if code is not None:
        (root / "datasources" / f"{name}.py").write_text(code)
    if kind == "website_crawl":
        decl = root / "datasources" / f"{name}.yaml"
        decl.write_text(decl.read_text().replace("parameters: []\n", CRAWL_PARAMETERS))
    return root
