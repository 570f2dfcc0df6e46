"""A loopback stand-in for GitHub's git hosting: Git's smart HTTP protocol, served by ``git http-backend``.

GitHub cannot be reached from the test machine, but what uv (through the git CLI) asks of it is the smart
HTTP protocol, which ``git http-backend`` — Git's own implementation of the server side — speaks byte for
byte. This wraps it as CGI in a threaded HTTP server over bare repositories under ``root``, so a
``name @ git+http://127.0.0.1:PORT/owner/repo.git@tag`` requirement is fetched as from github.com.
"""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: GitServer.Server

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {"PATH": os.environ.get("PATH", ""), "GIT_PROJECT_ROOT": str(self.server.root),
               "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": url.path,
               "QUERY_STRING": url.query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": self.client_address[0],
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
        run = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = run.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.server.requests.append(f"{self.command} {url.path}")
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads .requests
        pass


class GitServer:
    """Bare repositories under ``root`` served on a loopback port; ``publish`` makes one from a folder."""

    class Server(ThreadingHTTPServer):
        root: Path
        requests: list[str]

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.server = GitServer.Server(("127.0.0.1", 0), _Handler)
        self.server.root, self.server.requests = root, []
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    def publish(self, name: str, files: dict[str, str], tag: str) -> str:
        """A repository ``name`` (e.g. ``owner/pkg.git``) holding ``files`` in one commit tagged ``tag``;
        returns the commit's hash."""
        work = self.root / f"{name}.work"
        for path, text in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q", str(work)], check=True)
        subprocess.run([*git, "-C", str(work), "add", "."], check=True)
        subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "release"], check=True)
        subprocess.run([*git, "-C", str(work), "tag", tag], check=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(self.root / name)], check=True)
        return subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def __enter__(self) -> GitServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
