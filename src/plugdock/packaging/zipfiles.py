"""Deterministic zips: packages, bundles and the runtime wheel are the same bytes for the same files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip epoch: the same input always gives the same bytes

ProgressFn = Callable[[int, int], None]


def write_zip(files: list[tuple[str, bytes]], comment: bytes = b"", progress: ProgressFn | None = None,
              level: int = 6) -> bytes:
    """A zip with fixed timestamps and permissions, entries in the given order, deflate-compressed."""
    buffer = io.BytesIO()
    total = sum(len(c) for _, c in files)
    done = 0
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, content, compresslevel=level)
            done += len(content)
            if progress:
                progress(done, total)
        zf.comment = comment
    return buffer.getvalue()
