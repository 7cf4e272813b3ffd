"""Cancel-Lock / Cancel-Key matching (RFC 8315), checked against hashes computed here.

The expected locks are computed in the tests with hashlib and hmac, not with
nntpd.cancel_lock, and against the example values of RFC 8315 (the Cancel-Lock
and Cancel-Key examples of section 2, the key calculation example of section 4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from nntpd.cancel_lock import elements, lock_for, opens, refusal

# RFC 8315 section 2 examples: each key opens the lock of the same scheme.
RFC_LOCKS = "sha1:bNXHc6ohSmeHaRHHW56BIWZJt+4= sha256:RrKLp7YCQc9T8HmgSbxwIDlnCDWsgy1awqtiDuhedRo="
RFC_SHA1_KEY = "sha1:aaaBBBcccDDDeeeFFF"
RFC_SHA256_KEY = "sha256:sSkDke97Dh78/d+Diu1i3dQ2Fp/EMK3xE2GfEqZlvK8="


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_rfc_examples_open_their_locks():
    """RFC 8315 2.1/2.2: both example keys open the two-element example Cancel-Lock."""
    assert refusal(RFC_SHA1_KEY, RFC_LOCKS) is None
    assert refusal(RFC_SHA256_KEY, RFC_LOCKS) is None
    assert refusal(f"{RFC_SHA1_KEY} {RFC_SHA256_KEY}", RFC_LOCKS) is None


def test_rfc_section_4_key_calculation_example():
    """RFC 8315 4: K = HMAC-SHA256("ExampleSecret", "<12345@mid.example>"); c-key-string is
    Base64(K) and c-lock-string is Base64(SHA-256(c-key-string)), the string, not K."""
    key = b64(hmac.new(b"ExampleSecret", b"<12345@mid.example>", hashlib.sha256).digest())
    assert key == "qv1VXHYiCGjkX/N1nhfYKcAeUn8bCVhrWhoKuBSnpMA="
    assert lock_for(key) == "s/pmK/3grrz++29ce2/mQydzJuc7iqHn1nqcJiQTPMc="
    assert refusal(f"sha256:{key}", "sha256:s/pmK/3grrz++29ce2/mQydzJuc7iqHn1nqcJiQTPMc=") is None
    # Hashing the decoded K instead would give another lock: that must not open it.
    wrong = b64(hashlib.sha256(base64.b64decode(key)).digest())
    assert refusal(f"sha256:{key}", f"sha256:{wrong}") is not None


@pytest.mark.parametrize("scheme", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_lock_is_base64_of_the_hash_of_the_key_string(scheme):
    """RFC 8315 2: c-lock-string = Base64(hash(c-key-string)) for each registered scheme."""
    key = b64(hmac.new(b"secret", b"<a@b.example>", scheme).digest())
    expected = b64(hashlib.new(scheme, key.encode("ascii")).digest())
    assert lock_for(key, scheme) == expected
    assert refusal(f"{scheme}:{key}", f"{scheme}:{expected}") is None


def test_wrong_key_missing_key_and_missing_lock_are_refused_with_a_reason():
    """No lock, no key or a key that hashes to no lock: each gets its own reason."""
    key = b64(hmac.new(b"mine", b"<m@x>", hashlib.sha256).digest())
    lock = "sha256:" + b64(hashlib.sha256(key.encode()).digest())
    other = b64(hmac.new(b"guess", b"<m@x>", hashlib.sha256).digest())
    assert "no Cancel-Lock" in refusal(f"sha256:{key}", None)
    assert "no Cancel-Lock" in refusal(f"sha256:{key}", "")
    assert "no Cancel-Key" in refusal(None, lock)
    assert "does not match" in refusal(f"sha256:{other}", lock)
    # The lock string itself is public: sending it as the key must not open it.
    assert "does not match" in refusal(lock, lock)


def test_scheme_must_match_and_is_case_insensitive():
    """RFC 8315 2: a key opens only a lock of its own scheme; scheme names ignore case."""
    key = "aaaBBBcccDDDeeeFFF"
    sha1_lock = b64(hashlib.sha1(key.encode()).digest())
    assert refusal(f"ShA1:{key}", f"SHA1:{sha1_lock}") is None
    assert refusal(f"sha256:{key}", f"sha1:{sha1_lock}") is not None


def test_unknown_schemes_comments_and_folding_are_tolerated():
    """RFC 8315 2: c-lock-list allows CFWS; elements of schemes we do not know are skipped."""
    value = f"(poster's lock) md5:xxxx \t sha1:{RFC_LOCKS.split()[0][5:]}  (end)"
    assert elements(value) == [("sha1", "bNXHc6ohSmeHaRHHW56BIWZJt+4=")]
    assert elements("garbage nocolon sha256:") == []
    assert opens(elements(RFC_SHA1_KEY), elements(value))
