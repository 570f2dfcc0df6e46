from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from plugdock.sdk import (
    DatasourceGetPagesResponse,
    DatasourceMessage,
    GetOnlineDocumentPageContentRequest,
    OnlineDocumentDatasource,
    OnlineDocumentInfo,
    OnlineDocumentPage,
)

PAGES = Path(__file__).resolve().parent.parent / "pages"
WORKSPACE = "bundled"


def _title(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    return first[0].lstrip("# ").strip() if first else path.stem


class MarkdownPagesDatasource(OnlineDocumentDatasource):
    def _get_pages(self, datasource_parameters: Mapping[str, Any]) -> DatasourceGetPagesResponse:
        """Every workspace the credentials open, with its pages (here: one workspace, the bundled files)."""
        pages = [OnlineDocumentPage(page_id=path.stem, page_name=_title(path), page_icon=None, type="page",
                                    last_edited_time="2026-12-02T00:00:00Z", parent_id=None)
                 for path in sorted(PAGES.glob("*.md"))]
        info = OnlineDocumentInfo(workspace_id=WORKSPACE, workspace_name="Bundled pages", workspace_icon="",
                                  total=len(pages), pages=pages)
        return DatasourceGetPagesResponse(result=[info])

    def _get_content(self, page: GetOnlineDocumentPageContentRequest) -> Generator[DatasourceMessage, None, None]:
        """One page's content; Dify's pipeline reads the ``content`` variable of the output schema."""
        path = PAGES / f"{page.page_id}.md"
        if page.workspace_id != WORKSPACE or not path.is_file() or path.parent != PAGES:
            raise ValueError(f"no page {page.page_id!r} in workspace {page.workspace_id!r}")
        yield self.create_variable_message("workspace_id", page.workspace_id)
        yield self.create_variable_message("page_id", page.page_id)
        yield self.create_variable_message("content", path.read_text(encoding="utf-8"))
