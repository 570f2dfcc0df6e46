"""Differential conformance for datasource plugins: one plugin of each provider type, on the official SDK from
PyPI and on plugdock, gets the same request lines over real stdio; the normalised answers must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasource_plugins import datasource_plugin
from test_conformance import compare

pytestmark = pytest.mark.slow

CALLBACK = b"GET /callback?code=abc&state=s HTTP/1.1\r\nHost: dify.example\r\n\r\n".hex()


def base(provider: str = "demo_ds", **extra: object) -> dict[str, object]:
    return {"type": "datasource", "provider": provider, "user_id": "u1", **extra}


def test_website_crawl(tmp_path: Path, official_python: str) -> None:
    root = datasource_plugin(tmp_path / "crawl", "website_crawl")
    ds = base(datasource="demo_ds", credentials={"api_key": "k"})
    answers = compare(tmp_path, official_python, root, [
        {**ds, "action": "invoke_website_datasource_get_crawl", "datasource_parameters": {"url": "https://x.example"}},
        {**ds, "action": "invoke_website_datasource_get_crawl", "datasource_parameters": {}},
        {**ds, "action": "invoke_website_datasource_get_crawl", "datasource": "nope", "datasource_parameters": {}},
        {**base(), "action": "validate_datasource_credentials", "credentials": {"api_key": "k"}},
        {**base(), "action": "validate_datasource_credentials", "credentials": {"api_key": "invalid"}},
        {**base("nope"), "action": "validate_datasource_credentials", "credentials": {}},
        {**ds, "action": "invoke_online_drive_browse_files", "request": {"prefix": "", "max_keys": 5}},
        {"type": "oauth", "action": "get_authorization_url", "provider": "demo_ds", "user_id": "u1",
         "redirect_uri": "https://r", "system_credentials": {}},
    ])
    crawl = [m["data"] for m in answers[0] if m["type"] == "stream"]
    assert [c["result"]["status"] for c in crawl] == ["processing", "completed"]
    assert answers[4][0]["data"]["error_type"] == "DatasourceCredentialValidationError"


def test_online_document_and_oauth(tmp_path: Path, official_python: str) -> None:
    root = datasource_plugin(tmp_path / "docs", "online_document")
    ds = base(datasource="demo_ds", credentials={"api_key": "good"})
    oauth = {"type": "oauth", "provider": "demo_ds", "user_id": "u1", "redirect_uri": "https://dify.example/cb",
             "system_credentials": {"client_id": "cid"}}
    answers = compare(tmp_path, official_python, root, [
        {**ds, "action": "invoke_online_document_datasource_get_pages", "datasource_parameters": {}},
        {**ds, "action": "invoke_online_document_datasource_get_page_content",
         "page": {"workspace_id": "w1", "page_id": "p1", "type": "page"}},
        {**ds, "action": "invoke_online_document_datasource_get_page_content",
         "page": {"workspace_id": "w1", "page_id": "zz", "type": "page"}},
        {**base(), "action": "validate_datasource_credentials", "credentials": {"api_key": "good"}},
        {**base(), "action": "validate_datasource_credentials", "credentials": {"api_key": "bad"}},
        {**oauth, "action": "get_authorization_url"},
        {**oauth, "action": "get_credentials", "raw_http_request": CALLBACK},
        {**oauth, "action": "get_credentials",
         "raw_http_request": b"GET /callback HTTP/1.1\r\nHost: dify.example\r\n\r\n".hex()},
        {**oauth, "action": "refresh_credentials", "credentials": {"access_token": "tok"}},
    ])
    content = [m["data"] for m in answers[1] if m["type"] == "stream"]
    assert [c["type"] for c in content] == ["text", "json", "variable", "blob"]  # the blob whole, not chunked
    assert answers[6][0]["data"]["metadata"] == {"avatar_url": "https://a.example/ada.png", "name": "Ada"}


def test_online_drive(tmp_path: Path, official_python: str) -> None:
    root = datasource_plugin(tmp_path / "drive", "online_drive")
    ds = base(datasource="demo_ds", credentials={"api_key": "k"})
    answers = compare(tmp_path, official_python, root, [
        {**ds, "action": "invoke_online_drive_browse_files", "request": {"prefix": "", "max_keys": 1}},
        {**ds, "action": "invoke_online_drive_browse_files",
         "request": {"prefix": "", "max_keys": 1, "next_page_parameters": {"start": 1}, "bucket": "b"}},
        {**ds, "action": "invoke_online_drive_browse_files", "request": {"prefix": "docs", "max_keys": 20}},
        {**ds, "action": "invoke_online_drive_download_file", "request": {"id": "readme.txt"}},
        {**ds, "action": "invoke_online_drive_download_file", "request": {"id": "missing"}},
        {**ds, "action": "invoke_website_datasource_get_crawl", "datasource_parameters": {}},
        {"type": "oauth", "action": "refresh_credentials", "provider": "demo_ds", "user_id": "u1",
         "redirect_uri": "https://r", "system_credentials": {}, "credentials": {}},
    ])
    first = answers[0][0]["data"]["result"][0]
    assert first["is_truncated"] and first["next_page_parameters"] == {"start": 1}
