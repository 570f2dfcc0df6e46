from collections.abc import Generator

from plugdock.sdk import (
    DatasourceMessage,
    OnlineDriveBrowseFilesRequest,
    OnlineDriveBrowseFilesResponse,
    OnlineDriveDatasource,
    OnlineDriveDownloadFileRequest,
    OnlineDriveFile,
    OnlineDriveFileBucket,
)

# A tiny drive in memory: folder id -> entries; replace it with calls to your service's API.
FOLDERS = {
    "": [OnlineDriveFile(id="docs", name="docs", size=0, type="folder"),
         OnlineDriveFile(id="readme.txt", name="readme.txt", size=11, type="file")],
    "docs": [OnlineDriveFile(id="docs/guide.md", name="guide.md", size=8, type="file")],
}
CONTENT = {"readme.txt": b"hello drive", "docs/guide.md": b"# Guide\n"}


class __CLASS__Datasource(OnlineDriveDatasource):
    def _browse_files(self, request: OnlineDriveBrowseFilesRequest) -> OnlineDriveBrowseFilesResponse:
        entries = FOLDERS.get(request.prefix or "")
        if entries is None:
            raise ValueError(f"no folder {request.prefix!r}")
        start = int((request.next_page_parameters or {}).get("start", 0))
        page = entries[start : start + request.max_keys]
        more = start + request.max_keys < len(entries)
        bucket = OnlineDriveFileBucket(bucket=request.bucket, files=page, is_truncated=more,
                                       next_page_parameters={"start": start + request.max_keys} if more else None)
        return OnlineDriveBrowseFilesResponse(result=[bucket])

    def _download_file(self, request: OnlineDriveDownloadFileRequest) -> Generator[DatasourceMessage, None, None]:
        data = CONTENT.get(request.id)
        if data is None:
            raise ValueError(f"no file {request.id!r}")
        yield self.create_blob_message(data, meta={"file_name": request.id.rsplit("/", 1)[-1],
                                                   "mime_type": "text/plain"})
