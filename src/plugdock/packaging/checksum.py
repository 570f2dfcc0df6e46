"""Package checksum, computed exactly as the official daemon does (it is part of the unique identifier)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def package_checksum(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over, for each entry sorted by path, sha256(path) followed by sha256(content)."""
    digests = sorted((name, hashlib.sha256(content).digest()) for name, content in files)
    outer = hashlib.sha256()
    for name, digest in digests:
        outer.update(hashlib.sha256(name.encode("utf-8")).digest())
        outer.update(digest)
    return outer.hexdigest()
