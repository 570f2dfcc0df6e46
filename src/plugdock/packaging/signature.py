"""Package signatures in the official scheme, and the daemon's trust policy over them.

The zip comment holds ``{"signature": base64, "time": unix}``; the signed bytes are the sha256 digest
of every entry in archive order followed by the decimal time; RSA PKCS#1 v1.5 with SHA-256. Keys are
PKCS#1 PEM (``RSA PRIVATE KEY`` / ``RSA PUBLIC KEY``) as the official CLI writes them.

Dify's own public key ships as package data (``keys/langgenius.pem``, the official daemon's
``pkg/license/public_key/PUBLIC_KEY.pem``), so Marketplace packages verify with no configuration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from plugdock.errors import KeyFileError, SignatureError
from plugdock.packaging.archive import VERIFICATION_FILE, PackageArchive
from plugdock.packaging.zipfiles import write_zip

Category = Literal["langgenius", "partner", "community"]
CATEGORIES: tuple[str, ...] = ("langgenius", "partner", "community")


def generate_keypair(bits: int = 4096) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    return private, public


def write_keypair(name: str, directory: str | Path = ".", bits: int = 4096) -> tuple[Path, Path]:
    directory = Path(directory)
    private_path, public_path = directory / f"{name}.private.pem", directory / f"{name}.public.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; choose another --name or remove it")
    private, public = generate_keypair(bits)
    private_path.write_bytes(private)
    private_path.chmod(0o600)
    public_path.write_bytes(public)
    return private_path, public_path


def load_private_key(path: str | Path) -> rsa.RSAPrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read private key: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM RSA private key ({exc})") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path}: the key is not an RSA key")
    return key


def load_public_key(path: str | Path) -> rsa.RSAPublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        if b"PRIVATE KEY" in data:
            raise KeyFileError(f"{path}: this is a private key; pass the .public.pem file") from exc
        raise KeyFileError(f"{path}: not a PEM RSA public key ({exc})") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{path}: the key is not an RSA key")
    return key


def _signed_bytes(files: list[tuple[str, bytes]], created: int) -> bytes:
    return b"".join(hashlib.sha256(c).digest() for _, c in files) + str(created).encode()


def sign_package(
    package: bytes, key: rsa.RSAPrivateKey, *, category: Category | None = "community", now: int | None = None
) -> bytes:
    """Return a signed copy of ``package`` (an earlier signature and verification entry are replaced)."""
    archive = PackageArchive.open(package)
    files = [(n, c) for n, c in archive.read_all() if n != VERIFICATION_FILE]
    if category is not None:
        if category not in CATEGORIES:
            raise SignatureError(f"authorized category {category!r} must be one of {', '.join(CATEGORIES)}")
        files.append((VERIFICATION_FILE, json.dumps({"authorized_category": category},
                                                    separators=(",", ":")).encode()))
    created = int(time.time()) if now is None else now
    signature = key.sign(_signed_bytes(files, created), padding.PKCS1v15(), hashes.SHA256())
    comment = json.dumps({"signature": base64.b64encode(signature).decode(), "time": created},
                         separators=(",", ":")).encode()
    return write_zip(files, comment=comment)


@dataclass
class SignatureInfo:
    time: int
    category: str | None
    key_index: int


def read_signature(archive: PackageArchive) -> tuple[bytes, int]:
    if not archive.comment:
        raise SignatureError(f"{archive.name}: the package is not signed (no signature in the zip comment)")
    try:
        meta = json.loads(archive.comment)
        signature = base64.b64decode(meta["signature"], validate=True)
        created = int(meta["time"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SignatureError(f"{archive.name}: the signature in the zip comment is malformed ({exc})") from exc
    return signature, created


def verify_package(archive: PackageArchive, keys: list[rsa.RSAPublicKey]) -> SignatureInfo:
    """Check the signature against each key in turn; raise ``SignatureError`` saying why none fits."""
    signature, created = read_signature(archive)
    files = archive.read_all()
    data = _signed_bytes(files, created)
    if not keys:
        raise SignatureError("no public key to verify with; pass --pubkey PUBLIC.pem")
    for index, key in enumerate(keys):
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        category = None
        for name, content in files:
            if name == VERIFICATION_FILE:
                try:
                    category = json.loads(content).get("authorized_category")
                except (ValueError, AttributeError):
                    category = None
        return SignatureInfo(time=created, category=category, key_index=index)
    raise SignatureError(
        f"{archive.name}: the signature does not verify with "
        f"{'the given key' if len(keys) == 1 else f'any of the {len(keys)} given keys'}: "
        "the package was changed after signing, or it was signed with another key"
    )


# -- trust: which keys the daemon accepts, and what a verified package may claim ---------------------
OFFICIAL_KEY_NAME = "Dify's official key"
OFFICIAL_AUTHOR = "langgenius"


@lru_cache(maxsize=1)
def official_public_key() -> rsa.RSAPublicKey:
    """Dify's Marketplace key, shipped with plugdock (public data; the official daemon embeds the same file)."""
    key = serialization.load_pem_public_key(package_files("plugdock.packaging").joinpath(
        "keys", "langgenius.pem").read_bytes())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@dataclass(frozen=True)
class TrustedKey:
    name: str  # OFFICIAL_KEY_NAME or the key file's path, for messages and the banner
    key: rsa.RSAPublicKey

    @property
    def official(self) -> bool:
        return self.name == OFFICIAL_KEY_NAME


def trusted_keys(third_party: list[str] | tuple[str, ...] = ()) -> tuple[TrustedKey, ...]:
    """The official key first, then each third-party key file (an unreadable one is named, never skipped)."""
    return (TrustedKey(OFFICIAL_KEY_NAME, official_public_key()),
            *(TrustedKey(path.strip(), load_public_key(path.strip())) for path in third_party))


def _category(archive: PackageArchive, key: TrustedKey) -> str:
    """The authorized category of a package whose signature verified with ``key``.

    As the official decoder: the verification entry's category; no entry means ``langgenius`` (Dify's
    packages predate the entry). plugdock gives that default only to packages signed with Dify's key —
    a third-party key without an entry is ``community``. An entry that is not one of the three
    categories makes the package unverified (the official decoder fails on one that is not JSON, and
    Dify cannot read an unknown category)."""
    content = archive.read(VERIFICATION_FILE)
    if content is None:
        return OFFICIAL_AUTHOR if key.official else "community"
    try:
        category = json.loads(content).get("authorized_category")
    except (ValueError, AttributeError):
        category = None
    if category not in CATEGORIES:
        raise SignatureError(f"{archive.name}: the signature verifies, but {VERIFICATION_FILE} is not "
                             f'{{"authorized_category": one of {", ".join(CATEGORIES)}}}')
    return str(category)


def claims_langgenius_unverified(author: str, verification: dict[str, Any] | None) -> bool:
    """The official ``isUnauthorizedLanggenius``: the author is ``langgenius`` (any case, not trimmed)
    but the package is not verified in the ``langgenius`` category."""
    if author.lower() != OFFICIAL_AUTHOR:
        return False
    return verification is None or verification.get("authorized_category") != OFFICIAL_AUTHOR


@dataclass(frozen=True)
class SignaturePolicy:
    """The official daemon's signature settings, by their names:

    - ``FORCE_VERIFYING_SIGNATURE`` (``required``): an upload that does not verify is refused (an
      upload's own ``verify_signature=true`` asks the same); otherwise it installs, marked unverified;
    - ``THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED`` / ``…_PUBLIC_KEYS``: the key files are trusted
      beside Dify's own only when enabled (``ignored`` lists them otherwise);
    - ``ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES`` (``enforce_langgenius``): a bundle member whose author is
      ``langgenius`` must be verified in the ``langgenius`` category. The official daemon applies it to
      bundle uploads only (its single-package check has been commented out since 2025-11), which
      lets packages built from Dify's own plugin sources install where signatures are not required.
    """

    required: bool = True
    keys: tuple[TrustedKey, ...] = ()
    enforce_langgenius: bool = True
    ignored: tuple[str, ...] = ()

    @classmethod
    def create(cls, *, required: bool, third_party_enabled: bool, third_party_keys: list[str],
               enforce_langgenius: bool) -> SignaturePolicy:
        paths = [p.strip() for p in third_party_keys if p.strip()]
        return cls(required=required, keys=trusted_keys(paths if third_party_enabled else ()),
                   enforce_langgenius=enforce_langgenius, ignored=() if third_party_enabled else tuple(paths))

    def describe(self) -> list[str]:
        """The banner: whether uploads must verify, with how many keys, and how to change either."""
        count = f"{len(self.keys)} trusted key{'s' if len(self.keys) != 1 else ''}"
        names = ", ".join(k.name for k in self.keys)
        if self.required:
            lines = [f"signature verification: on, {count} ({names}); for your own unsigned plugins during "
                     "development: plugdock serve --allow-unsigned"]
        else:
            lines = [f"signature verification: off (FORCE_VERIFYING_SIGNATURE=false): unsigned packages install; "
                     f"{count} ({names})"]
        if self.ignored:
            lines.append(f"THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS is ignored ({', '.join(self.ignored)}): "
                         "set THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true to trust those keys")
        return lines

    def _hint(self) -> str:
        hint = ("Sign it (plugdock sign) and trust your key (THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true, "
                "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS=KEY.public.pem)")
        if self.required:
            hint += (", or, for development, start the daemon with plugdock serve --allow-unsigned "
                     "(FORCE_VERIFYING_SIGNATURE=false)")
        return hint

    def check(self, archive: PackageArchive, required: bool, bundle_author: str | None = None) -> dict[str, Any] | None:
        """The upload's ``verification`` (``{"authorized_category": …}``), or None when it does not verify
        and need not. ``required`` is FORCE_VERIFYING_SIGNATURE or the upload's ``verify_signature``;
        ``bundle_author`` is the manifest's author for a bundle member, where the langgenius rule holds."""
        why = "this daemon requires signatures (FORCE_VERIFYING_SIGNATURE=true)" if self.required \
            else "the upload asked for a verified signature (verify_signature=true)"
        verification: dict[str, Any] | None = None
        try:
            if not archive.comment:
                raise SignatureError(f"{archive.name}: the package is not signed (no signature in the zip comment)")
            info = verify_package(archive, [k.key for k in self.keys])
            verification = {"authorized_category": _category(archive, self.keys[info.key_index])}
        except SignatureError as exc:
            if required:
                trusted = ", ".join(k.name for k in self.keys)
                raise SignatureError(f"{exc.message}, and {why}; trusted keys: {trusted}. {self._hint()}") from exc
        if bundle_author is not None and self.enforce_langgenius \
                and claims_langgenius_unverified(bundle_author, verification):
            raise SignatureError(
                f"{archive.name}: the plugin's author is {bundle_author!r}, but the package is not signed by Dify ("
                + (f"verified as {verification['authorized_category']!r}" if verification else "not verified")
                + "); a bundle carries langgenius plugins only as Dify signed them. Set "
                "ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES=false to allow it (not recommended)")
        return verification
