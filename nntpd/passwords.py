"""Password hashing with hashlib.scrypt (per-user salt, parameters stored with the hash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# n=2**14, r=8 costs ~16 MB and tens of milliseconds: slow for guessing, fine for logins.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # surrogateescape: bytes that are not UTF-8 (from a client line) hash as the bytes they were
    return hashlib.scrypt(password.encode("utf-8", "surrogateescape"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=KEY_BYTES)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def decoy_hash() -> str:
    """A hash in the format and at the cost of ``hash_password`` that no password matches.

    Checking a password against it costs what checking a real one does, so an
    unknown or locked name is answered in the same time; it is made without
    running scrypt (random bytes stand for the digest), so it costs nothing
    to make at start-up or on first use.
    """
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
            f"{b64(secrets.token_bytes(16))}${b64(secrets.token_bytes(KEY_BYTES))}")


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; False for an empty or unknown hash format."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
