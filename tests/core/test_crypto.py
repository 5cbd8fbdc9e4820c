"""apps.core.crypto: Fernet encryption of secrets, with comma-separated keys during a rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from apps.core import crypto


@pytest.fixture
def key(settings) -> str:
    settings.RELEASEHUB_ENCRYPTION_KEY = Fernet.generate_key().decode()
    return settings.RELEASEHUB_ENCRYPTION_KEY


@pytest.mark.parametrize("plaintext", ["hunter2", "", "ünïcödé 🔑", "x" * 100_000, "line\nbreak\x00nul"])
def test_round_trip(key, plaintext):
    ciphertext = crypto.encrypt(plaintext)
    assert isinstance(ciphertext, str)
    assert plaintext not in ciphertext or plaintext == ""
    assert crypto.decrypt(ciphertext) == plaintext


def test_same_plaintext_encrypts_differently_each_time(key):
    """Equal secrets cannot be told apart in the database."""
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_several_keys_first_encrypts_all_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = old
    under_old = crypto.encrypt("secret")
    settings.RELEASEHUB_ENCRYPTION_KEY = f" {new} , {old} ,"  # spaces and a trailing comma are fine
    under_new = crypto.encrypt("secret")
    assert crypto.decrypt(under_old) == crypto.decrypt(under_new) == "secret"
    assert Fernet(new.encode()).decrypt(under_new.encode()) == b"secret"
    with pytest.raises(crypto.InvalidToken):  # the old key alone cannot open it
        Fernet(old.encode()).decrypt(under_new.encode())


def test_rotate_re_encrypts_with_the_first_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RELEASEHUB_ENCRYPTION_KEY = old
    ciphertext = crypto.encrypt("secret")
    settings.RELEASEHUB_ENCRYPTION_KEY = f"{new},{old}"
    rotated = crypto.rotate(ciphertext)
    assert rotated != ciphertext
    settings.RELEASEHUB_ENCRYPTION_KEY = new
    assert crypto.decrypt(rotated) == "secret"
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(ciphertext)


def test_a_removed_key_raises_invalid_token(settings, key):
    ciphertext = crypto.encrypt("secret")
    settings.RELEASEHUB_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(ciphertext)
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt("not a fernet token")


@pytest.mark.parametrize("bad", ["", "not-a-key", "c2hvcnQ=", "," * 3, f"{'A' * 44},oops"])
def test_a_bad_key_setting_is_improperly_configured(settings, bad):
    settings.RELEASEHUB_ENCRYPTION_KEY = bad
    with pytest.raises(ImproperlyConfigured, match="RELEASEHUB_ENCRYPTION_KEY"):
        crypto.encrypt("x")
