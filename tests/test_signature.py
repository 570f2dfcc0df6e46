"""Signatures in the official scheme: round trip, tampering, wrong keys, malformed signatures."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from plugdock.errors import KeyFileError, SignatureError
from plugdock.packaging.archive import VERIFICATION_FILE, PackageArchive
from plugdock.packaging.build import build_package, write_zip
from plugdock.packaging.signature import (
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_package,
    verify_package,
    write_keypair,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    d = tmp_path_factory.mktemp("keys")
    a_priv, a_pub = write_keypair("a", d, bits=2048)
    b_priv, b_pub = write_keypair("b", d, bits=2048)
    return a_priv, a_pub, b_priv, b_pub


def test_keygen_writes_pkcs1_pem(keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, a_pub, _, _ = keys
    assert a_priv.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert a_pub.read_bytes().startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert a_priv.stat().st_mode & 0o077 == 0
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair("a", a_priv.parent)


def test_round_trip(tool_plugin: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, a_pub, _, _ = keys
    signed = sign_package(build_package(tool_plugin).data, load_private_key(a_priv), now=1700000000)
    archive = PackageArchive.open(signed)
    assert archive.files()[-1] == VERIFICATION_FILE
    assert json.loads(archive.comment) == {"signature": json.loads(archive.comment)["signature"], "time": 1700000000}
    info = verify_package(archive, [load_public_key(a_pub)])
    assert (info.time, info.category) == (1700000000, "community")


def test_signature_layout_is_the_official_one(tool_plugin: Path) -> None:
    """Recompute the signed message by hand: sha256 of each entry in order, then the decimal time."""
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = sign_package(build_package(tool_plugin).data, priv, category="partner", now=123)
    zf = zipfile.ZipFile(io.BytesIO(signed))
    message = b"".join(hashlib.sha256(zf.read(i)).digest() for i in zf.infolist()) + b"123"
    comment = json.loads(zf.comment)
    import base64

    priv.public_key().verify(base64.b64decode(comment["signature"]), message, padding.PKCS1v15(), hashes.SHA256())
    assert zf.read(VERIFICATION_FILE) == b'{"authorized_category":"partner"}'


def test_any_changed_byte_fails(tool_plugin: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, a_pub, _, _ = keys
    signed = sign_package(build_package(tool_plugin).data, load_private_key(a_priv))
    archive = PackageArchive.open(signed)
    files = archive.read_all()
    pub = load_public_key(a_pub)
    for index, (name, content) in enumerate(files):
        for position in {0, len(content) // 2, max(len(content) - 1, 0)}:
            changed = bytearray(content or b"\0")
            changed[position % len(changed)] ^= 0x01
            tampered = [*files[:index], (name, bytes(changed)), *files[index + 1 :]]
            rebuilt = PackageArchive.open(write_zip(tampered, comment=archive.comment))
            with pytest.raises(SignatureError, match="does not verify"):
                verify_package(rebuilt, [pub])


def test_wrong_key_fails_and_any_good_key_passes(tool_plugin: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, a_pub, _, b_pub = keys
    archive = PackageArchive.open(sign_package(build_package(tool_plugin).data, load_private_key(a_priv)))
    with pytest.raises(SignatureError, match="does not verify with the given key"):
        verify_package(archive, [load_public_key(b_pub)])
    assert verify_package(archive, [load_public_key(b_pub), load_public_key(a_pub)]).key_index == 1


def test_unsigned_and_malformed(tool_plugin: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    _, a_pub, _, _ = keys
    data = build_package(tool_plugin).data
    with pytest.raises(SignatureError, match="not signed"):
        verify_package(PackageArchive.open(data), [load_public_key(a_pub)])
    files = PackageArchive.open(data).read_all()
    for comment in (b"{not json", b'{"signature": "!!!", "time": 1}', b'{"time": 1}'):
        with pytest.raises(SignatureError, match="malformed"):
            verify_package(PackageArchive.open(write_zip(files, comment=comment)), [load_public_key(a_pub)])


def test_resigning_replaces_the_old_signature(tool_plugin: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, _, b_priv, b_pub = keys
    once = sign_package(build_package(tool_plugin).data, load_private_key(a_priv))
    twice = PackageArchive.open(sign_package(once, load_private_key(b_priv)))
    assert twice.files().count(VERIFICATION_FILE) == 1
    verify_package(twice, [load_public_key(b_pub)])


def test_bad_key_files(tmp_path: Path, keys: tuple[Path, Path, Path, Path]) -> None:
    a_priv, _, _, _ = keys
    (tmp_path / "junk.pem").write_text("nope")
    with pytest.raises(KeyFileError, match="not a PEM RSA public key"):
        load_public_key(tmp_path / "junk.pem")
    with pytest.raises(KeyFileError, match="this is a private key"):
        load_public_key(a_priv)
    with pytest.raises(KeyFileError, match="cannot read private key"):
        load_private_key(tmp_path / "missing.pem")
    priv, _ = generate_keypair(2048)
    assert load_private_key(_write(tmp_path / "p.pem", priv))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
