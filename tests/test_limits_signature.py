"""Signatures at their edges: every allowed category and one outside them, a package signed with no category,
the exact comment and verification bytes, malformed signatures of each kind, and key files that are EC,
encrypted, garbage, missing or of the wrong half."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from plugdock.errors import KeyFileError, SignatureError
from plugdock.packaging import signature
from plugdock.packaging.archive import VERIFICATION_FILE, PackageArchive
from plugdock.packaging.build import write_zip
from plugdock.packaging.signature import (
    CATEGORIES,
    generate_keypair,
    load_private_key,
    load_public_key,
    read_signature,
    sign_package,
    verify_package,
    write_keypair,
)

FILES = [("manifest.yaml", b"version: 0.0.1\n"), ("main.py", b"print('hi')\n")]
PACKAGE = write_zip(FILES)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_by_hand(files: list[tuple[str, bytes]], key: rsa.RSAPrivateKey, created: int = 7) -> PackageArchive:
    """A package signed over exactly ``files`` (so a verification entry can hold anything)."""
    message = signature._signed_bytes(files, created)
    sig = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    return PackageArchive.open(write_zip(files, comment=json.dumps({"signature": sig, "time": created}).encode()))


# -- categories -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("category", ["langgenius", "partner", "community"])
def test_each_allowed_category_is_signed_and_read_back(key: rsa.RSAPrivateKey, category: str) -> None:
    archive = PackageArchive.open(sign_package(PACKAGE, key, category=category, now=42))  # type: ignore[arg-type]
    assert archive.read(VERIFICATION_FILE) == b'{"authorized_category":"' + category.encode() + b'"}'
    info = verify_package(archive, [key.public_key()])
    assert (info.time, info.category, info.key_index) == (42, category, 0)
    assert CATEGORIES == ("langgenius", "partner", "community")


@pytest.mark.parametrize("category", ["", "Community", "official", "community "])
def test_a_category_outside_the_three_is_refused(key: rsa.RSAPrivateKey, category: str) -> None:
    with pytest.raises(SignatureError) as refused:
        sign_package(PACKAGE, key, category=category)  # type: ignore[arg-type]
    assert str(refused.value) == (f"authorized category {category!r} must be one of langgenius, partner, "
                                  "community")


def test_the_default_category_is_community(key: rsa.RSAPrivateKey) -> None:
    assert verify_package(PackageArchive.open(sign_package(PACKAGE, key)), [key.public_key()]).category == "community"


def test_a_package_signed_with_no_category_verifies_with_none(key: rsa.RSAPrivateKey) -> None:
    archive = PackageArchive.open(sign_package(PACKAGE, key, category=None, now=5))
    assert archive.files() == ["manifest.yaml", "main.py"]  # no verification entry at all
    info = verify_package(archive, [key.public_key()])
    assert (info.time, info.category, info.key_index) == (5, None, 0)


def test_resigning_with_no_category_drops_the_old_verification_entry(key: rsa.RSAPrivateKey) -> None:
    once = sign_package(PACKAGE, key, category="partner")
    again = PackageArchive.open(sign_package(once, key, category=None))
    assert VERIFICATION_FILE not in again.files()
    assert verify_package(again, [key.public_key()]).category is None


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"community"', b"{}"])
def test_a_verification_entry_that_is_not_a_category_object_gives_no_category(
        key: rsa.RSAPrivateKey, content: bytes) -> None:
    archive = signed_by_hand([*FILES, (VERIFICATION_FILE, content)], key)
    assert verify_package(archive, [key.public_key()]).category is None


def test_the_category_is_read_from_the_verification_entry_wherever_it_sits(key: rsa.RSAPrivateKey) -> None:
    files = [(VERIFICATION_FILE, b'{"authorized_category":"partner"}'), *FILES]
    assert verify_package(signed_by_hand(files, key), [key.public_key()]).category == "partner"


# -- what is written -------------------------------------------------------------------------------------

def test_the_comment_is_compact_json_and_the_time_is_now_by_default(
        key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signature.time, "time", lambda: 1700000000.9)
    archive = PackageArchive.open(sign_package(PACKAGE, key, category=None))
    sig = json.loads(archive.comment)["signature"]
    assert archive.comment == b'{"signature":"' + sig.encode() + b'","time":1700000000}'
    assert read_signature(archive) == (base64.b64decode(sig), 1700000000)


# -- malformed and mismatched signatures --------------------------------------------------------------

@pytest.mark.parametrize("comment", [
    b"{not json", b"[1]", b'"text"', b'{"time": 1}', b'{"signature": "AAAA"}', b'{"signature": "AAAA", "time": "x"}',
    b'{"signature": "AA!A", "time": 1}', b'{"signature": "AAA", "time": 1}', b'{"signature": 5, "time": 1}',
    b'{"signature": "AAAA", "time": null}',
])
def test_each_malformed_signature_is_named_malformed(key: rsa.RSAPrivateKey, comment: bytes) -> None:
    with pytest.raises(SignatureError, match=r"^package: the signature in the zip comment is malformed \("):
        verify_package(PackageArchive.open(write_zip(FILES, comment=comment)), [key.public_key()])


def test_an_unsigned_package_is_named(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_package(PackageArchive.open(PACKAGE), [key.public_key()])
    assert str(refused.value) == "package: the package is not signed (no signature in the zip comment)"


def test_no_key_to_verify_with(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_package(PackageArchive.open(sign_package(PACKAGE, key)), [])
    assert str(refused.value) == "no public key to verify with; pass --pubkey PUBLIC.pem"


def test_the_failure_counts_the_keys_and_the_match_gives_its_index(
        key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey) -> None:
    archive = PackageArchive.open(sign_package(PACKAGE, key))
    with pytest.raises(SignatureError) as refused:
        verify_package(archive, [other.public_key(), other.public_key()])
    assert str(refused.value) == ("package: the signature does not verify with any of the 2 given keys: the package "
                                  "was changed after signing, or it was signed with another key")
    with pytest.raises(SignatureError, match="^package: the signature does not verify with the given key: "):
        verify_package(archive, [other.public_key()])
    assert verify_package(archive, [other.public_key(), other.public_key(), key.public_key()]).key_index == 2


def test_a_changed_time_breaks_the_signature(key: rsa.RSAPrivateKey) -> None:
    archive = PackageArchive.open(sign_package(PACKAGE, key, now=100))
    meta = json.loads(archive.comment)
    moved = write_zip(archive.read_all(), comment=json.dumps({**meta, "time": 101}).encode())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_package(PackageArchive.open(moved), [key.public_key()])


# -- key files ------------------------------------------------------------------------------------------

def pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_ec_keys_are_refused_as_not_rsa(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private = pem(tmp_path / "ec.private.pem", ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = pem(tmp_path / "ec.public.pem", ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(KeyFileError) as refused:
        load_private_key(private)
    assert str(refused.value) == f"{private}: the key is not an RSA key"
    with pytest.raises(KeyFileError) as refused:
        load_public_key(public)
    assert str(refused.value) == f"{public}: the key is not an RSA key"


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"
                                     b"-----END RSA PRIVATE KEY-----\n"])
def test_garbage_private_keys_are_refused(tmp_path: Path, content: bytes) -> None:
    path = pem(tmp_path / "bad.pem", content)
    with pytest.raises(KeyFileError, match=rf"^{path}: not an unencrypted PEM RSA private key \("):
        load_private_key(path)


def test_an_encrypted_private_key_is_refused(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = pem(tmp_path / "enc.pem", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(KeyFileError, match=rf"^{path}: not an unencrypted PEM RSA private key \("):
        load_private_key(path)


def test_a_public_key_is_not_a_private_key(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = pem(tmp_path / "pub.pem", key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                   serialization.PublicFormat.PKCS1))
    with pytest.raises(KeyFileError, match="not an unencrypted PEM RSA private key"):
        load_private_key(path)
    assert load_public_key(path).public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n"
                                     b"-----END RSA PUBLIC KEY-----\n"])
def test_garbage_public_keys_are_refused(tmp_path: Path, content: bytes) -> None:
    path = pem(tmp_path / "bad.pem", content)
    with pytest.raises(KeyFileError, match=rf"^{path}: not a PEM RSA public key \("):
        load_public_key(path)


def test_missing_key_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as refused:
        load_public_key(tmp_path / "none.pem")
    assert str(refused.value) == f"{tmp_path / 'none.pem'}: cannot read public key: No such file or directory"
    with pytest.raises(KeyFileError) as refused:
        load_private_key(tmp_path / "none.pem")
    assert str(refused.value) == f"{tmp_path / 'none.pem'}: cannot read private key: No such file or directory"


def test_generated_keys_are_rsa_65537_of_the_size_asked(tmp_path: Path) -> None:
    private, public = generate_keypair(2048)
    key = serialization.load_pem_private_key(private, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.private_numbers().public_numbers.e == 65537
    assert private.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert public.startswith(b"-----BEGIN RSA PUBLIC KEY-----\n")
    assert load_public_key(pem(tmp_path / "p.pem", public)).public_numbers() == key.public_key().public_numbers()


def test_the_default_key_size_is_4096(tmp_path: Path) -> None:
    private_path, public_path = write_keypair("big", tmp_path)
    assert load_private_key(private_path).key_size == 4096
    assert load_public_key(public_path).key_size == 4096


def test_write_keypair_names_both_files_and_refuses_either_existing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private_path, public_path = write_keypair("k", tmp_path, bits=2048)
    assert (private_path, public_path) == (tmp_path / "k.private.pem", tmp_path / "k.public.pem")
    assert private_path.stat().st_mode & 0o777 == 0o600
    assert load_private_key(private_path).public_key().public_numbers() == load_public_key(public_path).public_numbers()
    (tmp_path / "only.public.pem").write_bytes(b"x")
    with pytest.raises(KeyFileError) as refused:
        write_keypair("only", tmp_path, bits=2048)
    assert str(refused.value) == f"{tmp_path / 'only.public.pem'} already exists; choose another --name or remove it"
    assert not (tmp_path / "only.private.pem").exists()
    monkeypatch.chdir(tmp_path)
    assert write_keypair("here", bits=2048) == (Path("here.private.pem"), Path("here.public.pem"))
