"""One way for CLI commands to take a secret: a file, the environment, or (deprecated) the command line.

A process's command line is world-readable in ``/proc/<pid>/cmdline``: every plugin on the host can read a
``--key VALUE`` while the command runs. A file (mode 600) or the environment (``/proc/<pid>/environ`` is
readable only by the same user and root) keeps it from other users.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import click

from plugdock.errors import PlugdockError

MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Secret:
    """A secret and where it came from (named in errors, e.g. when the daemon refuses it; never the value)."""

    value: str
    source: str


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def cmdline_warning(option: str, what: str, alternatives: str) -> str:
    return (f"{option} puts the {what} on the command line, where every local process (plugins included) can read "
            f"it in /proc/{os.getpid()}/cmdline while this command runs; {alternatives} instead")


def resolve_secret(*, file_path: Path | None, value: str | None, env_names: Sequence[str], what: str,
                   file_option: str = "--key-file", value_option: str = "--key", hint: str = "") -> Secret:
    """``--key-file`` or (deprecated, with a warning) ``--key``, else the first of ``env_names`` that is set.

    Flags beat the environment, as everywhere in plugdock; giving both flags is refused rather than guessed."""
    alternatives = f"pass {file_option} PATH or set {env_names[0]}"
    if file_path is not None and value is not None:
        raise PlugdockError(f"give {file_option} or {value_option}, not both")
    if file_path is not None:
        return Secret(_checked(read_secret_file(file_path, file_option), f"{file_option} {file_path}"),
                      f"{file_option} {file_path}")
    if value is not None:
        warn(cmdline_warning(value_option, what, alternatives))
        return Secret(_checked(value.strip(), value_option), value_option)
    for name in env_names:
        if name in os.environ:
            if not os.environ[name].strip():
                raise PlugdockError(f"{name} is set but empty: it should hold the {what}")
            return Secret(_checked(os.environ[name].strip(), name), name)
    raise PlugdockError(f"no {what} given: pass {file_option} PATH or set {' or '.join(env_names)}{hint}")


def read_secret_file(path: Path, option: str = "--key-file") -> str:
    """The stripped text of a one-line secret file; a missing, unreadable, empty or oversized file is an error
    naming it, and a regular file that group or others may read gets a warning. Pipes are accepted, so that
    ``--key-file <(pass show plugdock)`` works."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
                raise PlugdockError(f"{option} {path}: not a regular file")
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PlugdockError(f"{option} {path}: no such file") from None
    except IsADirectoryError:
        raise PlugdockError(f"{option} {path}: is a directory, not a key file") from None
    except PermissionError:
        raise PlugdockError(f"{option} {path}: permission denied (this command runs as uid {os.geteuid()})") from None
    except OSError as exc:
        raise PlugdockError(f"{option} {path}: cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISREG(info.st_mode) and info.st_mode & 0o044:
        who = " and ".join(w for w, bit in (("its group", 0o040), ("others", 0o004)) if info.st_mode & bit)
        warn(f"{option} {path} is readable by {who} (mode {stat.S_IMODE(info.st_mode):03o}): chmod 600 {path}")
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise PlugdockError(f"{option} {path}: larger than {MAX_KEY_FILE_BYTES // 1024} KiB; a key file holds "
                            "the key alone")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PlugdockError(f"{option} {path}: not UTF-8 text") from None
    if not text:
        raise PlugdockError(f"{option} {path}: the file is empty")
    if "\n" in text:
        raise PlugdockError(f"{option} {path}: holds {len(text.splitlines())} lines; a key file holds the key "
                            "alone, on one line")
    return text


def _checked(value: str, source: str) -> str:
    """Refuse what cannot travel in an HTTP header, naming the source (the value itself is never echoed)."""
    if not value:
        raise PlugdockError(f"{source}: the key is empty")
    for index, char in enumerate(value):
        if not " " <= char <= "~":
            raise PlugdockError(f"{source}: character {index + 1} of the key is not printable ASCII "
                                f"(U+{ord(char):04X})")
    return value


def url_has_password(url: str) -> bool:
    """Whether a URL carries a password, in its user part or as a ``password=`` query parameter (libpq)."""
    try:
        parts = urlsplit(url)
        return bool(parts.password) or any(k.lower() == "password" and v for k, v in parse_qsl(parts.query))
    except ValueError:
        return False


def warn_password_in_url(option: str, url: str | None, alternatives: str) -> None:
    if url and url_has_password(url):
        warn(cmdline_warning(option, "password in the URL", alternatives))
