"""Cancel-Lock and Cancel-Key (RFC 8315): who may withdraw an anonymous article.

A poster puts ``Cancel-Lock: sha256:<c-lock-string>`` on an article and keeps
a secret key K. To cancel it later they send ``Cancel-Key: sha256:<c-key-string>``,
where c-key-string is Base64(K) and c-lock-string is Base64(hash(c-key-string))
(RFC 8315 sections 2 and 4). The hash is taken over the c-key-string as sent
(its ASCII octets, padding included), not over the decoded K. Only the poster
knows a key that hashes to the published lock, so a From line anyone can type
no longer decides.

Pure functions on header values, no I/O: the server calls ``refusal`` inside
the cancel's transaction with the original's stored Cancel-Lock.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

__all__ = ["SCHEMES", "lock_for", "elements", "opens", "refusal"]

# The hash algorithms registered for RFC 8315 (section 7): sha256 is mandatory,
# sha1 is what Gnus sends.
SCHEMES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")  # CFWS may surround the elements


def lock_for(key: str, scheme: str = "sha256") -> str:
    """The c-lock-string that a c-key-string opens: Base64(hash(c-key-string))."""
    digest = SCHEMES[scheme.lower()](key.encode("utf-8", "surrogateescape")).digest()
    return base64.b64encode(digest).decode("ascii")


def elements(value: str | None) -> list[tuple[str, str]]:
    """The (scheme, string) pairs of a Cancel-Lock or Cancel-Key value, scheme in lower case.

    Elements of an unknown scheme are skipped, not an error: RFC 8315 lets a
    field carry schemes a server does not implement.
    """
    if not value:
        return []
    found = []
    for token in _COMMENT.sub(" ", value).split():
        scheme, colon, string = token.partition(":")
        if colon and string and scheme.lower() in SCHEMES:
            found.append((scheme.lower(), string))
    return found


def opens(keys: list[tuple[str, str]], locks: list[tuple[str, str]]) -> bool:
    """True if some key hashes to a lock of the same scheme.

    The locks are public, so a plain set lookup gives nothing away; each key is
    hashed once, so a long field costs linear time.
    """
    wanted = set(locks)
    return any((scheme, lock_for(key, scheme)) in wanted for scheme, key in keys)


def refusal(cancel_key: str | None, cancel_lock: str | None) -> str | None:
    """Why a cancel's Cancel-Key does not open the original's Cancel-Lock; None when it does."""
    locks = elements(cancel_lock)
    if not locks:
        return "the article has no Cancel-Lock (RFC 8315); only staff may cancel it"
    keys = elements(cancel_key)
    if not keys:
        return "the cancel has no Cancel-Key for the article's Cancel-Lock (RFC 8315)"
    if not opens(keys, locks):
        return "its Cancel-Key does not match the article's Cancel-Lock (RFC 8315)"
    return None
