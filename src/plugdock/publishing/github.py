"""The GitHub REST API calls publishing makes, and nothing more.

``GITHUB_API_URL`` points it at GitHub Enterprise (``https://HOST/api/v3``); uploads go to the ``upload_url`` a
release carries, never to a guessed host. Every failure is one line naming the call and GitHub's message."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from plugdock.errors import PlugdockError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
CHUNK = 64 * 1024
NEXT_RE = re.compile(r'<([^>]+)>;\s*rel="next"')
ProgressFn = Callable[[int, int], None]


class GitHubError(PlugdockError):
    code = "github_error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status=status)
        self.status = status


class GitHub:
    def __init__(self, token: str | None, api_url: str = DEFAULT_API_URL) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise PlugdockError(f"GITHUB_API_URL {api_url!r} must start with http:// or https://")
        self.api_url = api_url.rstrip("/")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "plugdock-publish"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(120, connect=15), follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------------
    def request(self, method: str, path_or_url: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else f"{self.api_url}{path_or_url}"
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PlugdockError(f"cannot reach GitHub at {url.split('?')[0]}: {exc or type(exc).__name__} "
                                "(GITHUB_API_URL sets the API for GitHub Enterprise)") from None
        if response.status_code not in ok:
            raise GitHubError(f"GitHub answered {method} {url.split('?')[0]} with HTTP {response.status_code}: "
                              f"{_message(response)}", response.status_code)
        return response

    def json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        return self.request(method, path, ok=ok, **kwargs).json()

    def paginate(self, path: str, per_page: int = 100) -> Iterator[Any]:
        """Follow the ``Link: <...>; rel="next"`` header GitHub pages lists with."""
        url: str | None = f"{self.api_url}{path}{'&' if '?' in path else '?'}per_page={per_page}"
        while url:
            response = self.request("GET", url)
            yield from response.json()
            match = NEXT_RE.search(response.headers.get("link", ""))
            url = match.group(1) if match else None

    # -- repositories -------------------------------------------------------------------------------------
    def repository(self, repo: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/repos/{repo}"))

    # -- releases -----------------------------------------------------------------------------------------
    def release_by_tag(self, repo: str, tag: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/repos/{repo}/releases/tags/{quote(tag, safe='')}", ok=(200, 404))
        return None if response.status_code == 404 else dict(response.json())

    def create_release(self, repo: str, tag: str, name: str, body: str) -> dict[str, Any]:
        return dict(self.json("POST", f"/repos/{repo}/releases", ok=(201,),
                              json={"tag_name": tag, "name": name, "body": body, "draft": False,
                                    "prerelease": False}))

    def assets(self, repo: str, release_id: int) -> list[dict[str, Any]]:
        return list(self.paginate(f"/repos/{repo}/releases/{release_id}/assets"))

    def delete_asset(self, repo: str, asset_id: int) -> None:
        self.request("DELETE", f"/repos/{repo}/releases/assets/{asset_id}", ok=(204,))

    def upload_asset(self, upload_url: str, name: str, data: bytes, progress: ProgressFn | None = None) -> Any:
        """POST the bytes to the release's ``upload_url`` (its ``{?name,label}`` template filled), streamed so
        ``progress(sent, total)`` can follow it."""
        base = upload_url.split("{", 1)[0]
        total = len(data)

        def chunks() -> Iterator[bytes]:
            for start in range(0, total, CHUNK):
                piece = data[start:start + CHUNK]
                yield piece
                if progress is not None:
                    progress(min(start + CHUNK, total), total)

        return self.json("POST", f"{base}?name={quote(name)}", ok=(201,), content=chunks(),
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(total)})

    def download_asset(self, asset: dict[str, Any]) -> bytes:
        """The asset's bytes through the API (private repositories too): a 302 to storage is followed without
        the token, as GitHub documents."""
        response = self.request("GET", str(asset["url"]), ok=(200, 302), headers={"Accept": "application/octet-stream"})
        if response.status_code == 302:
            location = response.headers["location"]
            try:
                response = httpx.get(location, timeout=httpx.Timeout(300, connect=15), follow_redirects=True)
            except httpx.TransportError as exc:
                raise PlugdockError(f"cannot download {asset.get('name')}: {exc or type(exc).__name__}") from None
            if response.status_code != 200:
                raise GitHubError(f"downloading {asset.get('name')} answered HTTP {response.status_code}",
                                  response.status_code)
        return response.content

    # -- forks, branches, contents, pull requests ---------------------------------------------------------
    def fork(self, repo: str) -> dict[str, Any]:
        """POST /forks answers 202 with the fork (new or existing); GitHub may need a moment to fill it."""
        return dict(self.json("POST", f"/repos/{repo}/forks", ok=(202,), json={"default_branch_only": True}))

    def branch_sha(self, repo: str, branch: str) -> str:
        return str(self.json("GET", f"/repos/{repo}/branches/{quote(branch, safe='')}")["commit"]["sha"])

    def ref_sha(self, repo: str, branch: str) -> str | None:
        response = self.request("GET", f"/repos/{repo}/git/ref/heads/{branch}", ok=(200, 404))
        return None if response.status_code == 404 else str(response.json()["object"]["sha"])

    def create_branch(self, repo: str, branch: str, sha: str) -> None:
        self.request("POST", f"/repos/{repo}/git/refs", ok=(201,), json={"ref": f"refs/heads/{branch}", "sha": sha})

    def file_sha(self, repo: str, path: str, branch: str) -> str | None:
        response = self.request("GET", f"/repos/{repo}/contents/{quote(path)}", ok=(200, 404),
                                params={"ref": branch})
        return None if response.status_code == 404 else str(response.json()["sha"])

    def path_exists(self, repo: str, path: str, ref: str) -> bool:
        response = self.request("GET", f"/repos/{repo}/contents/{quote(path)}", ok=(200, 404), params={"ref": ref})
        return response.status_code == 200

    def put_file(self, repo: str, path: str, content_b64: str, message: str, branch: str,
                 sha: str | None = None) -> dict[str, Any]:
        body = {"message": message, "content": content_b64, "branch": branch, **({"sha": sha} if sha else {})}
        return dict(self.json("PUT", f"/repos/{repo}/contents/{quote(path)}", ok=(200, 201), json=body))

    def open_pulls(self, repo: str, head: str) -> list[dict[str, Any]]:
        return list(self.paginate(f"/repos/{repo}/pulls?state=open&head={quote(head, safe='')}"))

    def create_pull(self, repo: str, *, title: str, head: str, base: str, body: str) -> dict[str, Any]:
        return dict(self.json("POST", f"/repos/{repo}/pulls", ok=(201,),
                              json={"title": title, "head": head, "base": base, "body": body,
                                    "maintainer_can_modify": True}))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:200]
    details = [e.get("message") or f"{e.get('resource')}.{e.get('field')} {e.get('code')}"
               for e in body.get("errors") or [] if isinstance(e, dict)]
    return "; ".join([str(body.get("message", "")), *map(str, details)]).strip("; ")


def parse_repo(text: str, option: str = "--repo") -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", text):
        raise PlugdockError(f"{option} {text!r} must be OWNER/NAME, such as alice/my-plugin")
    return text
