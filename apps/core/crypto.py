"""Encryption of secrets at rest (Fernet, from `cryptography`).

RELEASEHUB_ENCRYPTION_KEY holds one key, or several separated by commas during a key
rotation: the first encrypts, all of them decrypt. `manage.py rotate_encryption_key`
re-encrypts every secret with the first key, after which the others can be dropped.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac


@cache
def _fernet(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "RELEASEHUB_ENCRYPTION_KEY must be one or more comma-separated Fernet keys (generate one with: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(settings.RELEASEHUB_ENCRYPTION_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Raises InvalidToken when no configured key opens it (a lost or removed key)."""
    return fernet().decrypt(ciphertext.encode()).decode()


def rotate(ciphertext: str) -> str:
    """The same secret encrypted with the first (current) key."""
    return fernet().rotate(ciphertext.encode()).decode()


def fingerprint(plaintext: str) -> str:
    """A keyed hash (HMAC-SHA256 with SECRET_KEY) of a secret, taken when it is written: two environments'
    secrets can then be compared without decrypting either. Never shown: a hash of a short secret could be
    guessed offline by whoever also holds the key."""
    return salted_hmac("releasehub.secret-fingerprint", plaintext, algorithm="sha256").hexdigest()


__all__ = ["InvalidToken", "decrypt", "encrypt", "fernet", "fingerprint", "rotate"]
