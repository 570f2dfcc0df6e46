"""The daemon's signature policy with the official daemon's semantics: Dify's key always trusted, a real
Marketplace package verifying with it, third-party keys only when enabled, FORCE_VERIFYING_SIGNATURE
(or the upload's verify_signature) refusing what does not verify, and ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES
on bundle members. Keys other than Dify's are generated here."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plugdock.daemon.settings import load_settings
from plugdock.errors import KeyFileError, SignatureError
from plugdock.packaging.archive import VERIFICATION_FILE, PackageArchive
from plugdock.packaging.build import write_zip
from plugdock.packaging.signature import (
    OFFICIAL_KEY_NAME,
    SignaturePolicy,
    claims_langgenius_unverified,
    official_public_key,
    sign_package,
    trusted_keys,
    verify_package,
)

MARKETPLACE = Path(__file__).parent / "fixtures" / "marketplace" / "langgenius-agent_0.0.14.difypkg"
OFFICIAL_PEM = Path(__file__).parent.parent / "src" / "plugdock" / "packaging" / "keys" / "langgenius.pem"
FILES = [("manifest.yaml", b"author: acme\n"), ("main.py", b"print('hi')\n")]
PACKAGE = write_zip(FILES)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "acme.public.pem"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
    return path


def policy(*, required: bool = True, enabled: bool = False, keys: list[str] | None = None,
           enforce: bool = True) -> SignaturePolicy:
    return SignaturePolicy.create(required=required, third_party_enabled=enabled, third_party_keys=keys or [],
                                  enforce_langgenius=enforce)


def marketplace() -> PackageArchive:
    return PackageArchive.open(MARKETPLACE.read_bytes())


# -- Dify's key ----------------------------------------------------------------------------------------

def test_the_shipped_key_is_the_official_4096_bit_key_and_trusted_first() -> None:
    key = official_public_key()
    assert key.key_size == 4096 and key.public_numbers().e == 65537
    assert OFFICIAL_PEM.read_bytes().startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    keys = trusted_keys()
    assert [k.name for k in keys] == [OFFICIAL_KEY_NAME] and keys[0].official
    assert policy().keys == keys


def test_a_marketplace_package_verifies_with_no_configuration() -> None:
    """Signed by Dify, as the Marketplace serves it (the official daemon's own test package)."""
    archive = marketplace()
    info = verify_package(archive, [official_public_key()])
    assert (info.time, info.category) == (1744632035, None)  # no verification entry in Dify's packages
    # no entry and Dify's key: langgenius, as the official decoder's DefaultVerification
    assert policy().check(archive, required=True) == {"authorized_category": "langgenius"}
    assert policy().check(archive, required=True, bundle_author="langgenius") == {"authorized_category": "langgenius"}


def test_a_changed_marketplace_package_is_refused_naming_the_key_and_the_way_out() -> None:
    archive = marketplace()
    files = archive.read_all()
    files[-1] = (files[-1][0], files[-1][1] + b"\n# changed")
    changed = PackageArchive.open(write_zip(files, comment=archive.comment))
    with pytest.raises(SignatureError) as refused:
        policy().check(changed, required=True)
    message = str(refused.value)
    assert message.startswith("package: the signature does not verify with the given key: the package was changed "
                              "after signing")
    assert "this daemon requires signatures (FORCE_VERIFYING_SIGNATURE=true)" in message
    assert f"trusted keys: {OFFICIAL_KEY_NAME}." in message and "plugdock serve --allow-unsigned" in message
    assert policy(required=False).check(changed, required=False) is None  # installs, unverified


# -- FORCE_VERIFYING_SIGNATURE and verify_signature ----------------------------------------------------

def test_unsigned_packages_are_refused_when_required_and_unverified_otherwise() -> None:
    with pytest.raises(SignatureError) as refused:
        policy().check(PackageArchive.open(PACKAGE), required=True)
    assert str(refused.value).startswith("package: the package is not signed (no signature in the zip comment), "
                                         "and this daemon requires signatures (FORCE_VERIFYING_SIGNATURE=true)")
    assert policy(required=False).check(PackageArchive.open(PACKAGE), required=False) is None


def test_an_upload_asking_for_verification_is_refused_even_when_the_daemon_does_not_require_it() -> None:
    with pytest.raises(SignatureError) as refused:
        policy(required=False).check(PackageArchive.open(PACKAGE), required=True)
    message = str(refused.value)
    assert "the upload asked for a verified signature (verify_signature=true)" in message
    assert "--allow-unsigned" not in message  # the daemon already allows unsigned packages


# -- THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED / _PUBLIC_KEYS -----------------------------------------

def test_third_party_keys_are_trusted_only_when_enabled(key: rsa.RSAPrivateKey, key_file: Path) -> None:
    signed = PackageArchive.open(sign_package(PACKAGE, key, category="partner"))
    ignored = policy(keys=[str(key_file)])
    assert [k.name for k in ignored.keys] == [OFFICIAL_KEY_NAME] and ignored.ignored == (str(key_file),)
    with pytest.raises(SignatureError, match="trusted keys: Dify's official key[.]"):
        ignored.check(signed, required=True)
    enabled = policy(enabled=True, keys=[f" {key_file} "])  # paths trimmed, as the official daemon does
    assert [k.name for k in enabled.keys] == [OFFICIAL_KEY_NAME, str(key_file)] and enabled.ignored == ()
    assert enabled.check(signed, required=True) == {"authorized_category": "partner"}
    assert enabled.check(marketplace(), required=True) == {"authorized_category": "langgenius"}  # Dify's still


def test_enabled_with_no_keys_trusts_dify_alone() -> None:
    assert [k.name for k in policy(enabled=True, keys=[]).keys] == [OFFICIAL_KEY_NAME]


def test_an_unreadable_third_party_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="missing.pem: cannot read public key"):
        policy(enabled=True, keys=[str(tmp_path / "missing.pem")])
    policy(enabled=False, keys=[str(tmp_path / "missing.pem")])  # ignored keys are not read


def test_a_third_party_signature_without_a_verification_entry_is_community(
        key: rsa.RSAPrivateKey, key_file: Path) -> None:
    """The official default category (langgenius) is kept for Dify's key: a trusted third party without
    an entry does not become langgenius."""
    signed = PackageArchive.open(sign_package(PACKAGE, key, category=None))
    assert VERIFICATION_FILE not in signed.files()
    assert policy(enabled=True, keys=[str(key_file)]).check(signed, True) == {"authorized_category": "community"}


@pytest.mark.parametrize("entry", [b"not json", b"[1]", b"{}", b'{"authorized_category": "official"}'])
def test_a_verification_entry_outside_the_three_categories_does_not_verify(
        key: rsa.RSAPrivateKey, key_file: Path, entry: bytes) -> None:
    from test_limits_signature import signed_by_hand

    archive = signed_by_hand([*FILES, (VERIFICATION_FILE, entry)], key)
    trusting = policy(enabled=True, keys=[str(key_file)])
    with pytest.raises(SignatureError, match=r"the signature verifies, but \.verification\.dify\.json is not"):
        trusting.check(archive, required=True)
    assert trusting.check(archive, required=False) is None


# -- ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES ---------------------------------------------------------------

@pytest.mark.parametrize(("author", "verification", "unauthorized"), [
    ("langgenius", {"authorized_category": "langgenius"}, False),
    ("LangGenius", {"authorized_category": "langgenius"}, False),
    ("langgenius", {"authorized_category": "partner"}, True),
    ("langgenius", {"authorized_category": "community"}, True),
    ("LANGGENIUS", None, True),
    (" langgenius ", None, False),  # the official comparison does not trim
    ("langgenius_team", None, False),
    ("acme", None, False),
    ("", {"authorized_category": "langgenius"}, False),
])
def test_the_langgenius_rule_is_the_official_one(author: str, verification: dict[str, str] | None,
                                                  unauthorized: bool) -> None:
    assert claims_langgenius_unverified(author, verification) is unauthorized


def test_a_bundle_member_claiming_langgenius_must_be_signed_by_dify(key: rsa.RSAPrivateKey, key_file: Path) -> None:
    unsigned = PackageArchive.open(PACKAGE)
    lenient = policy(required=False)
    assert lenient.check(unsigned, required=False) is None  # a single upload: the rule does not apply
    with pytest.raises(SignatureError) as refused:
        lenient.check(unsigned, required=False, bundle_author="langgenius")
    assert str(refused.value) == (
        "package: the plugin's author is 'langgenius', but the package is not signed by Dify (not verified); a "
        "bundle carries langgenius plugins only as Dify signed them. Set ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES=false "
        "to allow it (not recommended)")
    signed = PackageArchive.open(sign_package(PACKAGE, key, category="community"))
    trusting = policy(required=False, enabled=True, keys=[str(key_file)])
    with pytest.raises(SignatureError, match=r"not signed by Dify \(verified as 'community'\)"):
        trusting.check(signed, required=False, bundle_author="langgenius")
    assert trusting.check(signed, required=False, bundle_author="acme") == {"authorized_category": "community"}
    assert policy(required=False, enforce=False).check(unsigned, required=False, bundle_author="langgenius") is None


# -- the banner and the settings -------------------------------------------------------------------------

def test_the_banner_says_whether_uploads_must_verify_and_with_how_many_keys(key_file: Path) -> None:
    assert policy().describe() == [
        "signature verification: on, 1 trusted key (Dify's official key); for your own unsigned plugins during "
        "development: plugdock serve --allow-unsigned"]
    assert policy(required=False, enabled=True, keys=[str(key_file)]).describe() == [
        "signature verification: off (FORCE_VERIFYING_SIGNATURE=false): unsigned packages install; 2 trusted keys "
        f"(Dify's official key, {key_file})"]
    assert policy(keys=[str(key_file)]).describe()[1] == (
        f"THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS is ignored ({key_file}): set "
        "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true to trust those keys")


def test_the_official_variable_names_set_the_policy(tmp_path: Path, key_file: Path) -> None:
    base = {"PLUGDOCK_HOME": str(tmp_path / "home")}
    default = load_settings(environ=base).signature_policy()
    assert (default.required, default.enforce_langgenius, len(default.keys)) == (True, True, 1)
    settings = load_settings(environ={**base, "FORCE_VERIFYING_SIGNATURE": "false",
                                      "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED": "true",
                                      "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS": str(key_file),
                                      "ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES": "false"})
    configured = settings.signature_policy()
    assert (configured.required, configured.enforce_langgenius) == (False, False)
    assert [k.name for k in configured.keys] == [OFFICIAL_KEY_NAME, str(key_file)]
    sources = {name: source for name, _, source in settings.describe()}
    assert sources["third_party_signature_verification_enabled"] == "env THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED"
    assert sources["enforce_langgenius_plugin_signatures"] == "env ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES"
