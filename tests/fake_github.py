"""A loopback GitHub: exactly the REST endpoints plugdock publish uses, in GitHub's documented shapes.

Two servers share one state, as api.github.com and uploads.github.com do: the API (repositories, releases,
assets, forks, branches, git refs, contents, pulls) and the upload host (``upload_url`` points there; it also
plays the storage a 302 from the asset download sends a client to, which refuses an Authorization header as S3
does). Status codes, ``Location`` headers and ``Link`` pagination follow docs.github.com/rest. A Marketplace
``GET /api/v1/plugins/AUTHOR/NAME/VERSION`` is served too, for the version check."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DOCS = "https://docs.github.com/rest"


@dataclass
class Repo:
    full_name: str
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (branch, path) -> bytes
    releases: list[dict[str, Any]] = field(default_factory=list)
    fork_of: str | None = None


class FakeGitHub:
    def __init__(self, token: str = "ghp_test", login: str = "alice") -> None:
        self.token, self.login = token, login
        self.repos: dict[str, Repo] = {}
        self.assets: dict[int, dict[str, Any]] = {}
        self.blobs: dict[int, bytes] = {}
        self.pulls: list[dict[str, Any]] = []
        self.marketplace: set[str] = set()  # "author/name/version" published there
        self.log: list[tuple[str, str, str | None]] = []  # method, path, Authorization header
        self.ids = itertools.count(1000)
        self.lock = threading.Lock()
        self.api = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(upload=False))
        self.uploads = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(upload=True))
        self.api_url = f"http://127.0.0.1:{self.api.server_address[1]}"
        self.upload_base = f"http://127.0.0.1:{self.uploads.server_address[1]}"

    # -- fixtures --------------------------------------------------------------------------------------
    def add_repo(self, full_name: str, files: dict[str, bytes] | None = None) -> Repo:
        repo = Repo(full_name, branches={"main": self._sha(full_name)})
        for path, data in (files or {}).items():
            repo.files[("main", path)] = data
        self.repos[full_name] = repo
        return repo

    def __enter__(self) -> FakeGitHub:
        for server in (self.api, self.uploads):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.api, self.uploads):
            server.shutdown()
            server.server_close()

    @staticmethod
    def _sha(*parts: object) -> str:
        return hashlib.sha1(repr(parts).encode()).hexdigest()

    # -- JSON shapes -----------------------------------------------------------------------------------
    def repo_json(self, repo: Repo) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        return {"id": abs(hash(repo.full_name)) % 10**8, "name": name, "full_name": repo.full_name,
                "owner": {"login": owner, "type": "User"}, "fork": repo.fork_of is not None,
                "default_branch": repo.default_branch, "html_url": f"https://github.com/{repo.full_name}",
                "url": f"{self.api_url}/repos/{repo.full_name}"}

    def release_json(self, repo: Repo, rel: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.api_url}/repos/{repo.full_name}/releases/{rel['id']}"
        return {**rel, "url": base, "assets_url": f"{base}/assets",
                "upload_url": f"{self.upload_base}/repos/{repo.full_name}/releases/{rel['id']}/assets{{?name,label}}",
                "html_url": f"https://github.com/{repo.full_name}/releases/tag/{rel['tag_name']}",
                "assets": [self.assets[a] for a in rel["asset_ids"] if a in self.assets]}

    # -- the handler -----------------------------------------------------------------------------------
    def _handler(self, upload: bool) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                      raw: bytes | None = None) -> None:
                data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                elif raw is not None:
                    self.send_header("Content-Type", "application/octet-stream")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
                body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
                if errors:
                    body["errors"] = errors
                self._send(status, body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.token}":
                    return True
                self._error(401, "Bad credentials")
                return False

            def _route(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
                with fake.lock:
                    fake.log.append((method, path, self.headers.get("Authorization")))
                    handler = fake.route_upload if upload else fake.route_api
                    handler(self, method, path, query)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler

    def route_upload(self, h: Any, method: str, path: str, query: dict[str, str]) -> None:
        if method == "GET" and (m := re.fullmatch(r"/storage/(\d+)", path)):
            if h.headers.get("Authorization"):  # S3 answers 400 to a request that carries both
                return h._error(400, "Only one auth mechanism allowed")
            return h._send(200, raw=self.blobs[int(m.group(1))])
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/releases/(\d+)/assets", path)
        if method != "POST" or not m:
            return h._error(404, "Not Found")
        data = h._body()
        if not h._authorized():
            return None
        repo = self.repos[m.group(1)]
        rel = next(r for r in repo.releases if r["id"] == int(m.group(2)))
        name = query.get("name", "")
        if any(self.assets[a]["name"] == name for a in rel["asset_ids"] if a in self.assets):
            return h._error(422, "Validation Failed",
                            [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}])
        asset_id = next(self.ids)
        self.blobs[asset_id] = data
        self.assets[asset_id] = {
            "id": asset_id, "name": name, "label": query.get("label", ""), "state": "uploaded",
            "content_type": h.headers.get("Content-Type"), "size": len(data),
            "url": f"{self.api_url}/repos/{repo.full_name}/releases/assets/{asset_id}",
            "browser_download_url": f"https://github.com/{repo.full_name}/releases/download/{rel['tag_name']}/{name}"}
        rel["asset_ids"].append(asset_id)
        return h._send(201, self.assets[asset_id])

    def route_api(self, h: Any, method: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("/api/v1/plugins/"):
            found = path.removeprefix("/api/v1/plugins/") in self.marketplace
            return h._send(200, {"code": 0, "data": {}}) if found else h._send(404, {"code": -1, "msg": "not found"})
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not m or m.group(1) not in self.repos:
            h._body()
            return h._error(404, "Not Found")
        repo, rest = self.repos[m.group(1)], m.group(2) or ""
        if method in ("POST", "PUT", "DELETE"):
            body = h._body()
            if not h._authorized():
                return None
            payload = json.loads(body or b"{}")
            return self.write(h, method, repo, rest, payload)
        return self.read(h, repo, rest, query)

    def read(self, h: Any, repo: Repo, rest: str, query: dict[str, str]) -> None:
        if rest == "":
            return h._send(200, self.repo_json(repo))
        if m := re.fullmatch(r"/releases/tags/(.+)", rest):
            rel = next((r for r in repo.releases if r["tag_name"] == m.group(1)), None)
            return h._send(200, self.release_json(repo, rel)) if rel else h._error(404, "Not Found")
        if m := re.fullmatch(r"/releases/(\d+)/assets", rest):
            rel = next((r for r in repo.releases if r["id"] == int(m.group(1))), None)
            if rel is None:
                return h._error(404, "Not Found")
            items = [self.assets[a] for a in rel["asset_ids"] if a in self.assets]
            return self.page(h, items, query, f"/repos/{repo.full_name}{rest}")
        if m := re.fullmatch(r"/releases/assets/(\d+)", rest):
            asset = self.assets.get(int(m.group(1)))
            if asset is None:
                return h._error(404, "Not Found")
            if h.headers.get("Accept") == "application/octet-stream":
                return h._send(302, raw=b"", headers={"Location": f"{self.upload_base}/storage/{asset['id']}"})
            return h._send(200, asset)
        if m := re.fullmatch(r"/branches/(.+)", rest):
            sha = repo.branches.get(m.group(1))
            if sha is None:
                return h._error(404, "Branch not found")
            return h._send(200, {"name": m.group(1), "commit": {"sha": sha}, "protected": False})
        if m := re.fullmatch(r"/git/ref/heads/(.+)", rest):
            sha = repo.branches.get(m.group(1))
            if sha is None:
                return h._error(404, "Not Found")
            return h._send(200, {"ref": f"refs/heads/{m.group(1)}", "object": {"sha": sha, "type": "commit"}})
        if m := re.fullmatch(r"/contents/(.+)", rest):
            branch, target = query.get("ref", repo.default_branch), m.group(1)
            if (branch, target) in repo.files:
                data = repo.files[(branch, target)]
                return h._send(200, {"type": "file", "name": target.rsplit("/", 1)[-1], "path": target,
                                     "sha": self._sha(data), "size": len(data), "encoding": "base64",
                                     "content": base64.b64encode(data).decode()})
            inside = sorted({p for b, p in repo.files if b == branch and p.startswith(f"{target}/")})
            if inside:
                return h._send(200, [{"type": "file", "path": p, "name": p.rsplit("/", 1)[-1]} for p in inside])
            return h._error(404, "Not Found")
        if rest == "/pulls":
            items = [p for p in self.pulls if p["base"]["repo"] == repo.full_name
                     and (query.get("state", "open") in ("all", p["state"]))
                     and ("head" not in query or p["head"]["label"] == query["head"])]
            return self.page(h, items, query, f"/repos/{repo.full_name}/pulls")
        return h._error(404, "Not Found")

    def page(self, h: Any, items: list[Any], query: dict[str, str], path: str) -> None:
        per_page, page = min(int(query.get("per_page", 30)), 100), int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        extra = "".join(f"&{k}={v}" for k, v in query.items() if k not in ("per_page", "page"))
        if page < last:
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={page + 1}{extra}>; rel="next"')
            links.append(f'<{self.api_url}{path}?per_page={per_page}&page={last}{extra}>; rel="last"')
        return h._send(200, chunk, headers={"Link": ", ".join(links)} if links else None)

    def write(self, h: Any, method: str, repo: Repo, rest: str, body: dict[str, Any]) -> None:
        if method == "POST" and rest == "/releases":
            if any(r["tag_name"] == body["tag_name"] for r in repo.releases):
                return h._error(422, "Validation Failed",
                                [{"resource": "Release", "code": "already_exists", "field": "tag_name"}])
            rel = {"id": next(self.ids), "tag_name": body["tag_name"], "name": body.get("name"),
                   "body": body.get("body"), "draft": body.get("draft", False),
                   "prerelease": body.get("prerelease", False), "asset_ids": []}
            repo.releases.append(rel)
            return h._send(201, self.release_json(repo, rel),
                           {"Location": f"{self.api_url}/repos/{repo.full_name}/releases/{rel['id']}"})
        if method == "DELETE" and (m := re.fullmatch(r"/releases/assets/(\d+)", rest)):
            if self.assets.pop(int(m.group(1)), None) is None:
                return h._error(404, "Not Found")
            return h._send(204)
        if method == "POST" and rest == "/forks":
            name = f"{self.login}/{repo.full_name.split('/')[1]}"
            if name not in self.repos:
                fork = self.add_repo(name)
                fork.branches = {repo.default_branch: repo.branches[repo.default_branch]}
                fork.files = {k: v for k, v in repo.files.items() if k[0] == repo.default_branch}
                fork.fork_of = repo.full_name
            return h._send(202, self.repo_json(self.repos[name]))
        if method == "POST" and rest == "/git/refs":
            branch = str(body["ref"]).removeprefix("refs/heads/")
            if branch in repo.branches:
                return h._error(422, "Reference already exists")
            repo.branches[branch] = body["sha"]
            for (b, p), data in list(repo.files.items()):
                if b == repo.default_branch:
                    repo.files[(branch, p)] = data
            return h._send(201, {"ref": body["ref"], "object": {"sha": body["sha"], "type": "commit"}},
                           {"Location": f"{self.api_url}/repos/{repo.full_name}/git/refs/heads/{branch}"})
        if method == "PUT" and (m := re.fullmatch(r"/contents/(.+)", rest)):
            key = (body.get("branch", repo.default_branch), m.group(1))
            if key[0] not in repo.branches:
                return h._error(404, "Branch not found")
            existing = repo.files.get(key)
            if existing is not None and body.get("sha") != self._sha(existing):
                return h._error(409 if body.get("sha") else 422,
                                f"{m.group(1)} does not match {body.get('sha')}" if body.get("sha")
                                else 'Invalid request.\n\n"sha" wasn\'t supplied.')
            data = base64.b64decode(body["content"])
            repo.files[key] = data
            repo.branches[key[0]] = self._sha(repo.branches[key[0]], key, data)
            content = {"name": key[1].rsplit("/", 1)[-1], "path": key[1], "sha": self._sha(data), "size": len(data)}
            return h._send(200 if existing is not None else 201,
                           {"content": content, "commit": {"sha": repo.branches[key[0]], "message": body["message"]}})
        if method == "POST" and rest == "/pulls":
            head_owner, _, head_branch = str(body["head"]).partition(":")
            head_repo = next((r for r in self.repos.values() if r.full_name.split("/")[0] == head_owner
                              and r.fork_of == repo.full_name), None)
            if head_repo is None or head_branch not in head_repo.branches:
                return h._error(422, "Validation Failed", [{"resource": "PullRequest", "field": "head",
                                                            "code": "invalid"}])
            if any(p["head"]["label"] == body["head"] and p["state"] == "open" for p in self.pulls):
                return h._error(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                            "message": f"A pull request already exists for "
                                                                       f"{body['head']}."}])
            number = len(self.pulls) + 1
            pull = {"number": number, "state": "open", "title": body["title"], "body": body.get("body"),
                    "head": {"label": body["head"], "ref": head_branch, "repo": head_repo.full_name},
                    "base": {"ref": body["base"], "repo": repo.full_name},
                    "maintainer_can_modify": body.get("maintainer_can_modify", False),
                    "html_url": f"https://github.com/{repo.full_name}/pull/{number}",
                    "url": f"{self.api_url}/repos/{repo.full_name}/pulls/{number}"}
            self.pulls.append(pull)
            return h._send(201, pull, {"Location": pull["url"]})
        return h._error(404, "Not Found")
