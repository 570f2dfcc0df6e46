"""One error hierarchy for every part of plugdock.

Each error carries a stable machine-readable ``code`` and a one-line human message; the CLI
prints ``message`` and exits non-zero, the daemon renders the same error inside its envelope.
"""

from __future__ import annotations

from typing import Any


class PlugdockError(Exception):
    """Base of every error plugdock raises on purpose (never a bare traceback for the user)."""

    code = "plugdock_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ValidationFailed(PlugdockError):
    """A plugin's declaration has errors; ``problems`` lists every one of them."""

    code = "validation_failed"

    def __init__(self, message: str, problems: list[Any]) -> None:
        super().__init__(message)
        self.problems = problems


class InvalidRequest(PlugdockError):
    """A request is well-formed JSON but asks for something invalid (a bad setting, a missing field)."""

    code = "invalid_request"


class PackageError(PlugdockError):
    """A ``.difypkg`` archive cannot be built or read safely (bad entry, limit exceeded...)."""

    code = "package_error"


class PackageLimitExceeded(PackageError):
    """A package, entry or ratio is over a named limit."""

    code = "package_limit_exceeded"


class SignatureError(PlugdockError):
    """A package signature is missing, malformed, or does not verify."""

    code = "signature_error"


class KeyFileError(PlugdockError):
    """A key file cannot be read or is not the expected kind of key."""

    code = "key_file_error"
