"""Package signatures in the official scheme.

The zip comment holds ``{"signature": base64, "time": unix}``; the signed bytes are the sha256 digest
of every entry in archive order followed by the decimal time; RSA PKCS#1 v1.5 with SHA-256. Keys are
PKCS#1 PEM (``RSA PRIVATE KEY`` / ``RSA PUBLIC KEY``) as the official CLI writes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from plugdock.errors import KeyFileError, SignatureError
from plugdock.packaging.archive import VERIFICATION_FILE, PackageArchive
from plugdock.packaging.build import write_zip

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
