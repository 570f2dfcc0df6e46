"""Which lines of a plugin's requirements.txt the daemon hands to uv, checked before anything is built.

A requirements file is input from whoever wrote the plugin, and uv acts on much more than requirements: ``-r``
reads any file (and echoes it in errors), ``--index-url`` swaps the index, ``-e``, paths and URLs run a build
backend. So each logical line (comments and blank lines dropped, ``\\`` continuations joined) must be one of:

- a PEP 508 requirement without a URL: ``name[extras] specifier ; markers``;
- a wheel shipped inside the package, relative to the plugin folder (as the official daemon's
  ``uv pip install -r requirements.txt`` run in that folder reads it), in any spelling uv accepts:
  ``./wheels/x.whl``, ``wheels/x.whl``, ``file:./wheels/x.whl``, ``name @ ./wheels/x.whl``,
  ``name @ wheels/x.whl``, ``name @ file:./wheels/x.whl`` (extras and ``; markers`` allowed). It must stay
  inside the plugin folder after links are resolved, be a regular file, and carry ``--hash=sha256:`` that
  matches it;
- only when the operator allows it (``PLUGDOCK_ALLOW_DIRECT_URLS``): ``name @ https://…`` or
  ``name @ git+https://…``; a URL to anything but a ``.whl`` must be built, so it needs
  ``PLUGDOCK_ALLOW_SDISTS`` too.

``plugdock`` and ``plugdock-sdk`` are accepted only as such a wheel (``plugdock package`` ships one): no index
publishes them, so a name lookup would install whatever a stranger registered under it.

Any of them may end with ``--hash=ALG:HEX`` options (sha256, sha384, sha512). Everything else is refused with
``requirements.txt:LINE`` and the reason: other options, bare URLs, absolute paths, ``..``, ``~``, ``${VAR}``
(uv expands variables, which would carry the daemon's environment into a URL).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from plugdock.errors import PlugdockError

FILE_NAME = "requirements.txt"
MAX_SIZE = 1024 * 1024
HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
REMOTE_SCHEMES = ("https", "http", "git+https", "git+http", "git+ssh")
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz", ".tar")
MAX_PROBLEMS = 10
OURS = ("plugdock", "plugdock-sdk")  # only ever from the wheel a package carries: no index publishes them
OPTION_REASONS = {
    "-r": "reads another file", "--requirement": "reads another file",
    "-c": "reads another file", "--constraint": "reads another file",
    "-e": "installs an editable source and runs its build", "--editable": "installs an editable source and runs "
                                                                           "its build",
    "-i": "replaces the package index (the operator sets it: UV_INDEX_URL)",
    "--index-url": "replaces the package index (the operator sets it: UV_INDEX_URL)",
    "--extra-index-url": "adds a package index (the operator sets it: UV_EXTRA_INDEX_URL)",
    "-f": "adds a place to find packages", "--find-links": "adds a place to find packages",
    "--no-binary": "turns on source builds (the operator decides: PLUGDOCK_ALLOW_SDISTS)",
}
_COMMENT = re.compile(r"(^|\s)#.*$")


class RequirementsRefused(PlugdockError):
    code = "requirements_refused"


@dataclass(frozen=True)
class ShippedWheel:
    """A wheel inside the plugin folder, pinned by hash."""

    path: Path  # resolved, inside the plugin folder
    hashes: tuple[str, ...]  # "alg:hex", every one checked

    def copy_into(self, folder: Path) -> Path:
        """Copy the wheel (its own file name) into ``folder``, checking the copied bytes against its hashes, so
        what uv reads is what was checked whatever happens to the original afterwards."""
        target = folder / self.path.name
        digests = {alg: hashlib.new(alg) for alg in {h.split(":", 1)[0] for h in self.hashes}}
        source = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                while chunk := os.read(source, 1 << 20):
                    for digest in digests.values():
                        digest.update(chunk)
                    os.write(out, chunk)
            finally:
                os.close(out)
        finally:
            os.close(source)
        for pinned in self.hashes:
            alg, expected = pinned.split(":", 1)
            if digests[alg].hexdigest() != expected:
                target.unlink()
                raise RequirementsRefused(f"{self.path.name} changed after it was checked (hash {alg} differs)")
        return target


@dataclass(frozen=True)
class CheckedLine:
    """One accepted requirement: where it was, and the text uv gets (wheels get their copied path later)."""

    number: int
    name: str  # canonical
    requirement: Requirement
    hashes: tuple[str, ...] = ()
    wheel: ShippedWheel | None = None
    needs_build: bool = False  # a direct URL to a source, not a wheel

    def render(self, wheel_copy: Path | None = None) -> str:
        options = "".join(f" --hash={h}" for h in self.hashes)
        if self.wheel is None:
            return f"{self.requirement}{options}"
        assert wheel_copy is not None, "a shipped wheel is installed from its checked copy"
        extras = f"[{','.join(sorted(self.requirement.extras))}]" if self.requirement.extras else ""
        marker = f" ; {self.requirement.marker}" if self.requirement.marker else ""
        return f"{self.requirement.name}{extras} @ {wheel_copy.as_uri()}{marker}{options}"


@dataclass(frozen=True)
class CheckedRequirements:
    """A requirements file that passed the policy, with the policy it passed under."""

    source: bytes
    lines: tuple[CheckedLine, ...]
    allow_sdists: bool = False

    @property
    def names(self) -> set[str]:
        return {line.name for line in self.lines}

    @property
    def wheels(self) -> list[CheckedLine]:
        return [line for line in self.lines if line.wheel is not None]

    def render(self, wheel_copies: dict[int, Path] | None = None) -> str:
        copies = wheel_copies or {}
        return "".join(f"{line.render(copies.get(line.number))}\n" for line in self.lines)

    def lines_named_in(self, text: str) -> list[CheckedLine]:
        """The requirements an error text mentions (uv names packages, not lines)."""
        found = []
        for line in self.lines:
            spelled = {line.name, line.requirement.name}
            if any(re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text, re.IGNORECASE) for name in spelled):
                found.append(line)
        return found


def read_requirements(plugin_dir: Path) -> bytes:
    """The plugin's requirements.txt (empty when it has none), never through a link, at most ``MAX_SIZE``."""
    try:
        fd = os.open(plugin_dir / FILE_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise RequirementsRefused(f"{FILE_NAME} cannot be read as a regular file ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RequirementsRefused(f"{FILE_NAME} is not a regular file")
        if info.st_size > MAX_SIZE:
            raise RequirementsRefused(f"{FILE_NAME} is {info.st_size} bytes, over the limit of {MAX_SIZE}")
        return os.read(fd, MAX_SIZE + 1)[:MAX_SIZE]
    finally:
        os.close(fd)


def check_requirements(source: bytes, plugin_dir: Path, *, allow_direct_urls: bool = False,
                       allow_sdists: bool = False, origin: str = FILE_NAME) -> CheckedRequirements:
    """Every line of ``source`` accepted by the policy of the module docstring, or RequirementsRefused naming
    each refused line (up to ``MAX_PROBLEMS``) and why."""
    try:
        text = source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequirementsRefused(f"{FILE_NAME} is not UTF-8 (byte {exc.start})") from None
    checked: list[CheckedLine] = []
    problems: list[str] = []
    for number, line in logical_lines(text):
        try:
            checked.append(_check_line(number, line, plugin_dir, allow_direct_urls, allow_sdists))
        except _Refused as refused:
            shown = line if len(line) <= 120 else line[:117] + "..."
            problems.append(f"{origin}:{number}: {refused} (`{shown}`)")
    if problems:
        more = f"\n(and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise RequirementsRefused("refused requirements:\n" + "\n".join(problems[:MAX_PROBLEMS]) + more)
    return CheckedRequirements(source, tuple(checked), allow_sdists)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, text) of each non-empty line, continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        joined, pending = pending + raw, ""
        cleaned = _COMMENT.sub("", joined).strip()
        if cleaned:
            out.append((start, cleaned))
    if pending and _COMMENT.sub("", pending).strip():
        out.append((start, _COMMENT.sub("", pending).strip()))
    return out


class _Refused(Exception):
    pass


def _check_line(number: int, line: str, plugin_dir: Path, allow_direct_urls: bool,
                allow_sdists: bool) -> CheckedLine:
    if "${" in line:
        raise _Refused("environment variable references (${...}) are not accepted")
    tokens = line.split()
    if tokens[0].startswith("-"):
        option = tokens[0].split("=", 1)[0]
        if not option.startswith("--"):
            option = option[:2]  # -r/path spells the value right after the letter
        if option == "--hash":
            raise _Refused("--hash must follow a requirement on the same line")
        reason = OPTION_REASONS.get(option, "options are not accepted")
        raise _Refused(f"option {option} {reason}; only plain requirements (name[extras] specifier ; markers) "
                       "with --hash options may be listed")
    first_option = next((i for i, token in enumerate(tokens) if token.startswith("-")), len(tokens))
    hashes = _hashes(tokens[first_option:])
    spec = " ".join(tokens[:first_option])
    location, _, marker_text = spec.partition(";")
    location = location.strip()
    requirement = _parse_named(spec)
    if requirement is not None and requirement.url is None and not _looks_like_path(location):
        if canonicalize_name(requirement.name) in OURS:
            raise _Refused(f"{requirement.name} would come from the package index, where plugdock is not published "
                           "(a package of that name there is not ours); packages built with `plugdock package` "
                           "carry it inside as wheels/plugdock_sdk-*.whl: rebuild this one with it")
        return CheckedLine(number, canonicalize_name(requirement.name), requirement, hashes)
    if requirement is not None and requirement.url is not None:
        url = requirement.url
        if _is_local(url):
            return _shipped_wheel(number, url, requirement, hashes, plugin_dir)
        return _direct_url(number, url, requirement, hashes, allow_direct_urls, allow_sdists)
    if _has_scheme(location) and not location.lower().startswith("file:"):
        raise _Refused("a URL without a package name is not accepted; write it as `name @ URL` (and the operator "
                       "must allow direct URLs: PLUGDOCK_ALLOW_DIRECT_URLS)")
    if _looks_like_path(location):
        try:
            marker = Marker(marker_text) if marker_text.strip() else None
        except InvalidMarker as exc:
            raise _Refused(f"invalid environment marker: {exc}") from None
        return _shipped_wheel(number, location, None, hashes, plugin_dir, marker)
    try:
        Requirement(spec)
    except InvalidRequirement as exc:
        raise _Refused(f"not a valid requirement: {str(exc).splitlines()[0]}") from None
    raise _Refused("not a valid requirement")  # pragma: no cover - parsed above


def _parse_named(spec: str) -> Requirement | None:
    try:
        return Requirement(spec)
    except InvalidRequirement:
        return None


def _hashes(options: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    index = 0
    while index < len(options):
        option = options[index]
        if option == "--hash" and index + 1 < len(options):
            value, index = options[index + 1], index + 2
        elif option.startswith("--hash="):
            value, index = option.removeprefix("--hash="), index + 1
        else:
            name = option.split("=", 1)[0]
            raise _Refused(f"only --hash=sha256:<hex> may follow a requirement, not {name}")
        alg, _, digest = value.partition(":")
        alg, digest = alg.lower(), digest.lower()
        if alg not in HASH_LENGTHS:
            raise _Refused(f"hash algorithm {alg or '(none)'!s} is not accepted (use sha256, sha384 or sha512)")
        if len(digest) != HASH_LENGTHS[alg] or not re.fullmatch(r"[0-9a-f]+", digest):
            raise _Refused(f"--hash={alg}: needs {HASH_LENGTHS[alg]} hexadecimal digits")
        found.append(f"{alg}:{digest}")
    return tuple(found)


def _has_scheme(location: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location) is not None and not re.match(r"^[A-Za-z]:[\\/]",
                                                                                       location)


def _is_local(url: str) -> bool:
    return url.lower().startswith("file:") or not _has_scheme(url)


def _looks_like_path(location: str) -> bool:
    lowered = location.lower()
    return (location.lower().startswith("file:") or "/" in location or "\\" in location
            or location.startswith((".", "~")) or lowered.endswith(ARCHIVE_SUFFIXES))


def _direct_url(number: int, url: str, requirement: Requirement, hashes: tuple[str, ...], allow_direct_urls: bool,
                allow_sdists: bool) -> CheckedLine:
    if not allow_direct_urls:
        raise _Refused("direct URL requirements are off: an operator can allow them with "
                       "PLUGDOCK_ALLOW_DIRECT_URLS=true")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in REMOTE_SCHEMES:
        raise _Refused(f"URL scheme {scheme}: is not accepted (use one of {', '.join(REMOTE_SCHEMES)})")
    is_wheel = scheme in ("https", "http") and urlsplit(url).path.lower().endswith(".whl")
    if not is_wheel and not allow_sdists:
        raise _Refused("this URL is a source that must be built, and source builds are off: an operator can allow "
                       "them with PLUGDOCK_ALLOW_SDISTS=true")
    return CheckedLine(number, canonicalize_name(requirement.name), requirement, hashes, needs_build=not is_wheel)


def _shipped_wheel(number: int, location: str, requirement: Requirement | None, hashes: tuple[str, ...],
                   plugin_dir: Path, marker: Marker | None = None) -> CheckedLine:
    relative = location
    if relative.lower().startswith("file:"):
        relative = unquote(relative[len("file:"):])
        if relative.startswith("//"):
            raise _Refused("file:// URLs name a place outside the package; ship the wheel inside the plugin folder "
                           "and name it relative to it (./wheels/x.whl)")
    if relative.startswith("/"):
        raise _Refused("absolute paths are not accepted; ship the wheel inside the plugin folder and name it "
                       "relative to it (./wheels/x.whl)")
    if relative.startswith("~") or "\\" in relative:
        raise _Refused("only paths relative to the plugin folder, with / separators, are accepted")
    if ".." in Path(relative).parts:
        raise _Refused("`..` leaves the plugin folder; only wheels inside the package are accepted")
    if not relative.lower().endswith(".whl"):
        raise _Refused("only wheels (.whl) inside the package are accepted as paths; a source folder or archive "
                       "would have to be built")
    root = plugin_dir.resolve()
    try:
        resolved = (root / relative).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise _Refused(f"{relative} is not in the package") from None
    except (OSError, RuntimeError) as exc:
        raise _Refused(f"{relative} cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(root):
        raise _Refused(f"{relative} resolves outside the plugin folder (through a link)")
    if not stat.S_ISREG(os.lstat(resolved).st_mode):
        raise _Refused(f"{relative} is not a regular file")
    try:
        wheel_name = parse_wheel_filename(resolved.name)[0]
    except InvalidWheelFilename as exc:
        raise _Refused(f"{resolved.name} is not a valid wheel file name ({exc})") from None
    if requirement is not None and canonicalize_name(requirement.name) != wheel_name:
        raise _Refused(f"the line names {requirement.name} but {resolved.name} is {wheel_name}")
    computed = _digest(resolved, "sha256")
    if not any(h.startswith("sha256:") for h in hashes):
        raise _Refused(f"a wheel shipped in the package must be pinned: add --hash=sha256:{computed}")
    for pinned in hashes:
        alg, expected = pinned.split(":", 1)
        actual = computed if alg == "sha256" else _digest(resolved, alg)
        if actual != expected:
            raise _Refused(f"hash mismatch for {relative}: the line pins {alg}:{expected}, the file is "
                           f"{alg}:{actual}")
    named = requirement or Requirement(f"{wheel_name}{' ; ' + str(marker) if marker else ''}")
    return CheckedLine(number, wheel_name, named, hashes, ShippedWheel(resolved, hashes))


def _digest(path: Path, alg: str) -> str:
    digest = hashlib.new(alg)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()
