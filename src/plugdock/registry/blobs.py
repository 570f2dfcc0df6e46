"""Where the registry keeps package bytes: a folder, or a bucket of any S3-compatible store.

S3 is spoken directly (path-style requests signed with AWS Signature Version 4 through httpx), so no AWS SDK is
needed: ``s3://BUCKET/PREFIX?endpoint=http://minio:9000&region=us-east-1``, credentials from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), as every S3 tool reads them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from plugdock.errors import PlugdockError

_KEY = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class StorageError(PlugdockError):
    code = "storage_error"


class Blobs(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def describe(self) -> str: ...


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise StorageError(f"blob key {key!r} is not a plain file name")
    return key


class DiskBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        target = self.root / _checked(key)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get(self, key: str) -> bytes | None:
        path = self.root / _checked(key)
        return path.read_bytes() if path.is_file() else None

    def describe(self) -> str:
        return str(self.root)


class S3Blobs:
    """Objects ``PREFIX/KEY`` in ``BUCKET``; the bucket must exist."""

    def __init__(self, bucket: str, prefix: str, endpoint: str, region: str) -> None:
        self.bucket, self.prefix, self.region = bucket, prefix.strip("/"), region
        self.endpoint = endpoint.rstrip("/")
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        self.token = os.environ.get("AWS_SESSION_TOKEN", "")
        if not self.access_key or not self.secret_key:
            raise StorageError("S3 storage needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
        self.client = httpx.Client(timeout=120)

    def _path(self, key: str) -> str:
        name = f"{self.prefix}/{_checked(key)}" if self.prefix else _checked(key)
        return f"/{quote(self.bucket)}/{quote(name)}"

    def _request(self, method: str, key: str, body: bytes = b"") -> httpx.Response:
        url = f"{self.endpoint}{self._path(key)}"
        headers = self._sign(method, url, body)
        try:
            return self.client.request(method, url, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            raise StorageError(f"S3 {method} {url}: {exc}") from exc

    def _sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        parts = urlsplit(url)
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        if self.token:
            headers["x-amz-security-token"] = self.token
        names = sorted(headers)
        canonical = "\n".join([method, parts.path, "", *(f"{n}:{headers[n]}" for n in names), "",
                               ";".join(names), payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")
        del headers["host"]  # httpx sends it; it was signed with the same value
        return headers

    def put(self, key: str, data: bytes) -> None:
        response = self._request("PUT", key, data)
        if response.status_code != 200:
            raise StorageError(f"S3 PUT {self._path(key)} answered {response.status_code}: {response.text[:300]}")

    def get(self, key: str) -> bytes | None:
        response = self._request("GET", key)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StorageError(f"S3 GET {self._path(key)} answered {response.status_code}: {response.text[:300]}")
        return response.content

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint}"


def open_blobs(spec: str, home: Path) -> Blobs:
    """``s3://BUCKET[/PREFIX][?endpoint=URL&region=R]``, a folder path, or (empty) ``HOME/packages``."""
    if not spec:
        return DiskBlobs(home / "packages")
    if spec.startswith("s3://"):
        parts = urlsplit(spec)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.netloc:
            raise StorageError(f"--storage {spec}: name the bucket (s3://BUCKET/PREFIX)")
        region = query.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
            or "us-east-1"
        endpoint = query.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3") \
            or os.environ.get("AWS_ENDPOINT_URL") or f"https://s3.{region}.amazonaws.com"
        return S3Blobs(parts.netloc, parts.path, endpoint, region)
    if "://" in spec and not spec.startswith("file://"):
        raise StorageError(f"--storage {spec}: give a folder or s3://BUCKET/PREFIX")
    return DiskBlobs(Path(spec.removeprefix("file://")))
