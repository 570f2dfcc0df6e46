"""Datasource providers and the three datasource kinds: what a datasource plugin author subclasses.

Class and method names match the official ``dify_plugin.interfaces.datasource`` so ``plugdock port`` is a
change of imports: authors implement the underscored methods, the runtime calls the public ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, final

from plugdock.sdk.datasource_entities import (
    DatasourceGetPagesResponse,
    DatasourceMessage,
    DatasourceOAuthCredentials,
    DatasourceRuntime,
    GetOnlineDocumentPageContentRequest,
    OnlineDriveBrowseFilesRequest,
    OnlineDriveBrowseFilesResponse,
    OnlineDriveDownloadFileRequest,
    WebsiteCrawlMessage,
    WebSiteInfo,
)
from plugdock.sdk.tool import OAuthCredentials, ToolLike

if TYPE_CHECKING:
    from plugdock.sdk.session import Session

_SUBCLASS = "This method should be implemented by a subclass"


def _oauth_result(result: DatasourceOAuthCredentials) -> OAuthCredentials:
    return OAuthCredentials(credentials=result.credentials,
                            expires_at=-1 if result.expires_at is None else result.expires_at,
                            metadata={"avatar_url": result.avatar_url, "name": result.name})


class DatasourceProvider:
    """Checks a datasource provider's credentials and, when the provider declares ``oauth_schema``, runs OAuth."""

    def validate_credentials(self, credentials: Mapping[str, Any]) -> None:
        return self._validate_credentials(credentials)

    def _validate_credentials(self, credentials: Mapping[str, Any]) -> None:
        raise NotImplementedError(_SUBCLASS)

    def oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        return self._oauth_get_authorization_url(redirect_uri, system_credentials)

    def _oauth_get_authorization_url(self, redirect_uri: str, system_credentials: Mapping[str, Any]) -> str:
        raise NotImplementedError(_SUBCLASS)

    def oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                              request: Any) -> OAuthCredentials:
        return _oauth_result(self._oauth_get_credentials(redirect_uri, system_credentials, request))

    def _oauth_get_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                               request: Any) -> DatasourceOAuthCredentials:
        raise NotImplementedError(_SUBCLASS)

    def oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                  credentials: Mapping[str, Any]) -> OAuthCredentials:
        return _oauth_result(self._oauth_refresh_credentials(redirect_uri, system_credentials, credentials))

    def _oauth_refresh_credentials(self, redirect_uri: str, system_credentials: Mapping[str, Any],
                                   credentials: Mapping[str, Any]) -> DatasourceOAuthCredentials:
        raise NotImplementedError("The tool you are using does not support OAuth, please implement "
                                  "`_oauth_refresh_credentials` method")


class WebsiteCrawlDatasource(ABC):
    """``provider_type: website_crawl``: yield ``WebsiteCrawlMessage`` progress until the crawl completes."""

    runtime: DatasourceRuntime
    session: Session

    @final
    def __init__(self, runtime: DatasourceRuntime, session: Session) -> None:
        self.runtime = runtime
        self.session = session

    def create_crawl_message(self, website_info: WebSiteInfo) -> WebsiteCrawlMessage:
        return WebsiteCrawlMessage(result=website_info)

    def website_crawl(self, datasource_parameters: Mapping[str, Any]) -> Generator[WebsiteCrawlMessage, None, None]:
        return self._get_website_crawl(datasource_parameters)

    @abstractmethod
    def _get_website_crawl(self, datasource_parameters: Mapping[str, Any],
                           ) -> Generator[WebsiteCrawlMessage, None, None]:
        raise NotImplementedError(_SUBCLASS)


class _MessageDatasource(ToolLike[DatasourceMessage]):
    """What the online document and online drive classes share: they stream content as datasource messages."""

    runtime: DatasourceRuntime
    session: Session

    @final
    def __init__(self, runtime: DatasourceRuntime, session: Session) -> None:
        self.runtime = runtime
        self.session = session
        self.response_type = DatasourceMessage


class OnlineDocumentDatasource(_MessageDatasource):
    """``provider_type: online_document``: list workspaces' pages, then yield one page's content as messages."""

    def get_pages(self, datasource_parameters: Mapping[str, Any]) -> DatasourceGetPagesResponse:
        return self._get_pages(datasource_parameters)

    @abstractmethod
    def _get_pages(self, datasource_parameters: Mapping[str, Any]) -> DatasourceGetPagesResponse:
        raise NotImplementedError(_SUBCLASS)

    def get_content(self, page: GetOnlineDocumentPageContentRequest) -> Generator[DatasourceMessage, None, None]:
        return self._get_content(page)

    @abstractmethod
    def _get_content(self, page: GetOnlineDocumentPageContentRequest) -> Generator[DatasourceMessage, None, None]:
        raise NotImplementedError(_SUBCLASS)


class OnlineDriveDatasource(_MessageDatasource):
    """``provider_type: online_drive``: browse buckets and folders page by page, then yield a file's content."""

    def browse_files(self, request: OnlineDriveBrowseFilesRequest) -> OnlineDriveBrowseFilesResponse:
        return self._browse_files(request)

    @abstractmethod
    def _browse_files(self, request: OnlineDriveBrowseFilesRequest) -> OnlineDriveBrowseFilesResponse:
        raise NotImplementedError(_SUBCLASS)

    def download_file(self, request: OnlineDriveDownloadFileRequest) -> Generator[DatasourceMessage, None, None]:
        return self._download_file(request)

    @abstractmethod
    def _download_file(self, request: OnlineDriveDownloadFileRequest) -> Generator[DatasourceMessage, None, None]:
        raise NotImplementedError(_SUBCLASS)


__all__ = [
    "DatasourceProvider",
    "OnlineDocumentDatasource",
    "OnlineDriveDatasource",
    "WebsiteCrawlDatasource",
]
