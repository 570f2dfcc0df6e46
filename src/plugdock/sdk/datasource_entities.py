"""What datasources take and return: the official ``dify_plugin.entities.datasource`` models, field for field.

pydantic models, as in the official SDK, because authors build them by keyword and the runtime sends
their ``model_dump()`` as the wire answer; a field renamed here would break the host's parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from plugdock.sdk.messages import InvokeMessage


class DatasourceMessage(InvokeMessage):
    """What an online-document or online-drive datasource yields (page content, file content)."""

    __slots__ = ()


class DatasourceRuntime(BaseModel):
    credentials: Mapping[str, Any]
    user_id: str | None
    session_id: str | None


class WebSiteInfoDetail(BaseModel):
    source_url: str = Field(..., description="The url of the website")
    content: str = Field(..., description="The content of the website")
    title: str = Field(..., description="The title of the website")
    description: str = Field(..., description="The description of the website")


class WebSiteInfo(BaseModel):
    status: str | None = Field(..., description="crawl job status")
    web_info_list: list[WebSiteInfoDetail] | None = []
    total: int | None = Field(default=0, description="The total number of websites")
    completed: int | None = Field(default=0, description="The number of completed websites")


class WebsiteCrawlMessage(BaseModel):
    result: WebSiteInfo


class OnlineDocumentPage(BaseModel):
    page_id: str = Field(..., description="The page id")
    page_name: str = Field(..., description="The page name")
    page_icon: dict[str, Any] | None = Field(None, description="The page icon")
    type: str = Field(..., description="The type of the page")
    last_edited_time: str = Field(..., description="The last edited time")
    parent_id: str | None = Field(None, description="The parent page id")


class OnlineDocumentInfo(BaseModel):
    workspace_id: str = Field(..., description="The workspace id")
    workspace_name: str = Field(..., description="The workspace name")
    workspace_icon: str = Field(..., description="The workspace icon")
    total: int = Field(..., description="The total number of documents")
    pages: list[OnlineDocumentPage] = Field(..., description="The pages of the online document")


class DatasourceGetPagesResponse(BaseModel):
    result: list[OnlineDocumentInfo] = Field(..., description="The pages of the online document")


class GetOnlineDocumentPageContentRequest(BaseModel):
    workspace_id: str = Field(..., description="The workspace id")
    page_id: str = Field(..., description="The page id")
    type: str = Field(..., description="The type of the page")


class OnlineDriveFile(BaseModel):
    id: str = Field(..., description="File ID")
    name: str = Field(..., description="File name")
    size: int = Field(..., description="File size")
    type: str = Field(..., description="File type (folder/file)")


class OnlineDriveFileBucket(BaseModel):
    bucket: str | None = Field(None, description="File bucket")
    files: list[OnlineDriveFile] = Field(..., description="File contents")
    is_truncated: bool = Field(..., description="Whether the result is truncated")
    next_page_parameters: dict[str, Any] | None = Field(None, description="Parameters for fetching the next page")


class OnlineDriveBrowseFilesRequest(BaseModel):
    bucket: str | None = Field(None, description="File bucket")
    prefix: str | None = Field(..., description="Parent ID")
    max_keys: int = Field(20, description="Page size")
    next_page_parameters: dict[str, Any] | None = Field(None, description="Parameters for fetching the next page")


class OnlineDriveBrowseFilesResponse(BaseModel):
    result: list[OnlineDriveFileBucket] = Field(..., description="File list")


class OnlineDriveDownloadFileRequest(BaseModel):
    bucket: str | None = Field(None, description="File bucket")
    id: str = Field(..., description="File ID")


class DatasourceOAuthCredentials(BaseModel):
    """What ``_oauth_get_credentials`` returns; ``name`` and ``avatar_url`` become the credential's metadata."""

    name: str | None = Field(None, description="The name of the OAuth credential")
    avatar_url: str | None = Field(None, description="The avatar url of the OAuth")
    credentials: Mapping[str, Any] = Field(..., description="The credentials of the OAuth")
    expires_at: int | None = Field(default=-1, description="Expiry in seconds since the epoch; -1 or None: never")


__all__ = [
    "DatasourceGetPagesResponse",
    "DatasourceMessage",
    "DatasourceOAuthCredentials",
    "DatasourceRuntime",
    "GetOnlineDocumentPageContentRequest",
    "OnlineDocumentInfo",
    "OnlineDocumentPage",
    "OnlineDriveBrowseFilesRequest",
    "OnlineDriveBrowseFilesResponse",
    "OnlineDriveDownloadFileRequest",
    "OnlineDriveFile",
    "OnlineDriveFileBucket",
    "WebSiteInfo",
    "WebSiteInfoDetail",
    "WebsiteCrawlMessage",
]
