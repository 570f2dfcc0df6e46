"""The lean ``plugdock-sdk`` wheel that ``plugdock package`` ships inside every package that uses plugdock.

plugdock is on no package index, and a plugin's requirements are installed from one (the official daemon runs
``uv pip install -r requirements.txt`` in the plugin folder). So the package carries what a running plugin needs
of plugdock — the SDK, the runtime, the wire protocol, the declaration schemas — as a wheel of its own, built here
from the files of the plugdock that is running, whether it came from a checkout, a wheel or an index. The wheel
is named ``plugdock-sdk`` (it is not the whole of plugdock: no CLI, daemon, web or database layer) and installs
the ``plugdock`` import package, so plugin code is the same in development and in production. Its bytes depend
only on those files and the version: the same plugdock always builds the same wheel, with the same hash.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from plugdock.packaging.zipfiles import write_zip

DISTRIBUTION = "plugdock-sdk"
WHEEL_FOLDER = "wheels"  # inside the package, where offline packages keep their wheels too
# The parts of the ``plugdock`` import package a plugin process loads (the lean-plugin import contract keeps them
# free of the rest), and the third-party packages they import. Kept in step with pyproject.toml by a test.
PARTS = ("sdk", "runtime", "protocol", "schema")
TOP_FILES = ("__init__.py", "errors.py", "py.typed")
DEPENDENCIES = ("pydantic>=2.6,<3", "PyYAML>=6.0", "httpx>=0.27", "werkzeug>=3.0")
REQUIRES_PYTHON = ">=3.11"


@dataclass(frozen=True)
class RuntimeWheel:
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def package_path(self) -> str:
        """Where the wheel sits inside a package (and so inside the installed plugin folder)."""
        return f"{WHEEL_FOLDER}/{self.filename}"

    def requirement_line(self, marker: str = "") -> str:
        """The requirements.txt line uv and the daemon's policy both read: relative to the plugin folder, hashed."""
        where = f" ; {marker}" if marker else ""
        return f"{DISTRIBUTION} @ ./{self.package_path}{where} --hash=sha256:{self.sha256}"


def source_files(root: Path | None = None) -> list[tuple[str, bytes]]:
    """The files of the running plugdock that go into the wheel, as (path in the wheel, bytes), sorted."""
    if root is None:
        import plugdock

        root = Path(plugdock.__file__).resolve().parent
    files = [(f"plugdock/{name}", (root / name).read_bytes()) for name in TOP_FILES if (root / name).is_file()]
    for part in PARTS:
        for path in sorted((root / part).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                files.append((f"plugdock/{path.relative_to(root).as_posix()}", path.read_bytes()))
    if not any(name == "plugdock/sdk/__init__.py" for name, _ in files):
        raise FileNotFoundError(f"{root}: no plugdock SDK here to build the plugdock-sdk wheel from")
    return sorted(files)


def _record_hash(content: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


_built: dict[tuple[str, str], RuntimeWheel] = {}


def build_runtime_wheel(version: str | None = None, root: Path | None = None) -> RuntimeWheel:
    """Build the wheel (a plain zip with a dist-info folder, as PEP 427 describes) from the running plugdock.

    Built once per process for the same files: an edited checkout gets a new wheel, an unchanged one the same bytes.
    """
    import plugdock

    version = version or plugdock.__version__
    files = source_files(root)
    fingerprint = hashlib.sha256(b"".join(name.encode() + b"\0" + content for name, content in files)).hexdigest()
    if (version, fingerprint) not in _built:
        _built[(version, fingerprint)] = _assemble(version, files)
    return _built[(version, fingerprint)]


def _assemble(version: str, files: list[tuple[str, bytes]]) -> RuntimeWheel:
    dist_info = f"plugdock_sdk-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {DISTRIBUTION}",
        f"Version: {version}",
        "Summary: The plugdock SDK and plugin runtime: what a running Dify plugin written with plugdock needs",
        "License: Apache-2.0",
        f"Requires-Python: {REQUIRES_PYTHON}",
        *(f"Requires-Dist: {dependency}" for dependency in DEPENDENCIES),
        "",
    ])
    wheel = "Wheel-Version: 1.0\nGenerator: plugdock\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = [*files, (f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel.encode()),
             (f"{dist_info}/top_level.txt", b"plugdock\n")]
    record = "".join(f"{name},{_record_hash(content)},{len(content)}\n" for name, content in files)
    files.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    return RuntimeWheel(f"plugdock_sdk-{version}-py3-none-any.whl", write_zip(files, level=9))
