"""Passwords, AUTHINFO USER/PASS and SASL PLAIN (RFC 4643), the cleartext rule and login throttling.

Every test runs a real server on a free port with a temporary SQLite file
and talks to it over TCP; accounts are created through the store with a
cheap scrypt cost (n=2**10) so the file stays fast.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest

from conftest import Client, ServerHandle, connected, running
from nntpd.config import AccessRule, AuthSettings, Settings
from nntpd.passwords import hash_password, verify_password

FAST_N = 2**10
PASSWORD = "correct-horse-battery"


@asynccontextmanager
async def serving(tmp_path: Path, auth: AuthSettings | None = None,
                  access: tuple[AccessRule, ...] = (AccessRule(),), **overrides: object
                  ) -> AsyncIterator[ServerHandle]:
    """A server with accounts alice (member), bob (member) and dave (disabled)."""
    settings = Settings(auth=auth or AuthSettings(failure_delay=0.0), access=access)
    async with running(tmp_path, settings=settings, **overrides) as handle:
        for name in ("alice", "bob", "dave"):
            await handle.store.add_account(name, email=f"{name}@example.com", display_name=name.title(),
                                           password_hash=hash_password(PASSWORD, n=FAST_N))
        await handle.store.set_disabled("dave", True)
        yield handle


def plain(authcid: str, password: str, authzid: str = "") -> str:
    """A SASL PLAIN message (RFC 4616 section 2), base64-encoded."""
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


async def capabilities(client: Client) -> list[str]:
    status = await client.cmd("CAPABILITIES")
    assert status.startswith("101"), status
    return await client.block()


async def login(client: Client, user: str = "alice", password: str = PASSWORD) -> str:
    first = await client.cmd(f"AUTHINFO USER {user}")
    if not first.startswith("381"):
        return first
    return await client.cmd(f"AUTHINFO PASS {password}")


# -- passwords -------------------------------------------------------------


def test_hash_format_is_scrypt_with_parameters_and_salt():
    """Spec: stored as scrypt$n$r$p$salt$hash (hashlib.scrypt), parameters kept with the hash."""
    stored = hash_password("s3cret-pass", n=FAST_N)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(FAST_N), "8", "1")
    salt_bytes = base64.b64decode(salt)
    assert len(salt_bytes) >= 16
    expected = hashlib.scrypt(b"s3cret-pass", salt=salt_bytes, n=FAST_N, r=8, p=1,
                              dklen=len(base64.b64decode(digest)))
    assert base64.b64decode(digest) == expected


def test_default_cost_is_recorded_in_hash():
    """Spec: the default cost is stored with the hash, so it can be raised later."""
    scheme, n, r, p, *_ = hash_password("another-pass").split("$")
    assert scheme == "scrypt" and int(n) >= 2**14 and int(r) >= 8 and int(p) >= 1


def test_per_user_salt_makes_equal_passwords_differ():
    """Spec: per-user salt: two hashes of one password differ, both verify."""
    first, second = hash_password("same-password", n=FAST_N), hash_password("same-password", n=FAST_N)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("same-password", first) and verify_password("same-password", second)


def test_verify_true_and_false():
    """Spec: verify is True for the right password only."""
    stored = hash_password("right-password", n=FAST_N)
    assert verify_password("right-password", stored) is True
    assert verify_password("wrong-password", stored) is False
    assert verify_password("right-password ", stored) is False
    assert verify_password("", stored) is False


@pytest.mark.parametrize("garbage", [
    "", "garbage", "scrypt$", "scrypt$x$8$1$AAAA$AAAA", "md5$16384$8$1$AAAA$AAAA",
    "scrypt$1024$8$1$not base64!$AAAA", "scrypt$1023$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    "scrypt$1024$8$1$AAAA$AAAA$extra", "scrypt$0$8$1$AAAA$AAAA",
])
def test_garbage_hash_never_verifies(garbage):
    """Spec: a garbage or foreign hash verifies False (never raises)."""
    assert verify_password("anything", garbage) is False


# -- AUTHINFO USER/PASS (RFC 4643 2.3) ---------------------------------------


async def test_user_pass_success(tmp_path):
    """RFC 4643 2.3.2: AUTHINFO USER -> 381, AUTHINFO PASS -> 281."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("281")


async def test_wrong_password_481_then_retry_succeeds(tmp_path):
    """RFC 4643 2.3.2: a failed USER/PASS is 481; the client may present other credentials."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
        assert (await client.cmd("AUTHINFO PASS wrong-password")).startswith("481")
        assert (await login(client)).startswith("281")


async def test_unknown_user_481(tmp_path):
    """RFC 4643 2.3.2: unknown user: 381 to USER (no user enumeration), then 481."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO USER nosuchuser")).startswith("381")
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("481")


async def test_pass_before_user_482(tmp_path):
    """RFC 4643 2.3.2: AUTHINFO PASS with no cached username is 482."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("482")
        assert (await client.cmd("DATE")).startswith("111")


async def test_most_recent_user_is_used(tmp_path):
    """RFC 4643 2.3.2: the server MUST use the argument of the most recent AUTHINFO USER."""
    async with serving(tmp_path) as handle:
        await handle.store.set_password_hash("bob", hash_password("bobs-password", n=FAST_N))
        async with connected(handle) as client:
            assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
            assert (await client.cmd("AUTHINFO USER bob")).startswith("381")
            assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("481")
        async with connected(handle) as client:
            assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
            assert (await client.cmd("AUTHINFO USER bob")).startswith("381")
            assert (await client.cmd("AUTHINFO PASS bobs-password")).startswith("281")


async def test_authinfo_after_success_502(tmp_path):
    """RFC 4643 2.2: after authentication every AUTHINFO command is rejected with 502."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await login(client)).startswith("281")
        assert (await client.cmd("AUTHINFO USER bob")).startswith("502")
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("502")
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('bob', PASSWORD)}")).startswith("502")


async def test_disabled_account_481(tmp_path):
    """Spec + RFC 4643 2.3.2: a disabled account cannot log in, even with the right password (481)."""
    async with serving(tmp_path) as handle:
        async with connected(handle) as client:
            assert (await login(client, "dave")).startswith("481")
            assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('dave', PASSWORD)}")).startswith("481")
        await handle.store.set_disabled("dave", False)
        async with connected(handle) as client:
            assert (await login(client, "dave")).startswith("281")


async def test_account_disabled_during_session_cannot_post(tmp_path):
    """Spec (issue 13): a disabled account's open session is anonymous from its next command on,
    so where posting needs an account its POST is refused (480, RFC 4643 2.1)."""
    access = (AccessRule(groups="*", read="anyone", post="authenticated"),)
    async with serving(tmp_path, access=access) as handle, connected(handle) as client:
        assert (await login(client)).startswith("281")
        await handle.store.set_disabled("alice", True)
        status = await client.post("From: alice@example.com\nNewsgroups: local.test\nSubject: x\n\nbody\n")
        assert status.startswith("480"), status
        group = await handle.store.group("local.test")
        assert group is not None and group.count == 0


# -- AUTHINFO SASL PLAIN (RFC 4643 2.4, RFC 4616) -----------------------------


async def test_sasl_plain_initial_response(tmp_path):
    """RFC 4643 2.4.2 with RFC 4616: PLAIN with an initial response -> 281."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD)}")).startswith("281")
        assert (await client.cmd("AUTHINFO USER alice")).startswith("502")


async def test_sasl_plain_without_initial_response(tmp_path):
    """RFC 4643 2.4.2: no initial response -> 383 challenge, the client sends the base64 line -> 281."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("383")
        assert (await client.cmd(plain("alice", PASSWORD))).startswith("281")


async def test_sasl_empty_challenge_is_equals_sign(tmp_path):
    """RFC 4643 2.4.2: a zero-length server challenge MUST be sent as a single '=' (383 =)."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL PLAIN")) == "383 ="
        assert (await client.cmd(plain("alice", PASSWORD))).startswith("281")


async def test_sasl_plain_wrong_password_481(tmp_path):
    """RFC 4643 2.4.2: if the server cannot authenticate the client it MUST reply 481."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', 'wrong')}")).startswith("481")
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("383")
        assert (await client.cmd(plain("alice", "wrong"))).startswith("481")
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD)}")).startswith("281")


async def test_sasl_cancel_with_star_481(tmp_path):
    """RFC 4643 2.4.2: '*' cancels the exchange and the server MUST reply 481; the session goes on."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("383")
        assert (await client.cmd("*")).startswith("481")
        assert (await client.cmd("DATE")).startswith("111")
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD)}")).startswith("281")


async def test_sasl_bad_base64_504(tmp_path):
    """RFC 4643 2.4.2: a client response that is not valid BASE64 MUST be rejected with 504."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL PLAIN AAA=BBB")).startswith("504")
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("383")
        assert (await client.cmd("not*base64")).startswith("504")
        assert (await client.cmd("DATE")).startswith("111")


async def test_sasl_unknown_mechanism_503(tmp_path):
    """RFC 4643 2.4.2: an unsupported mechanism is rejected with 503."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        assert (await client.cmd("AUTHINFO SASL CRAM-MD5")).startswith("503")


async def test_sasl_plain_authzid(tmp_path):
    """RFC 4616 2: an authzid equal to the authcid is fine; one the user may not act as fails (481)."""
    async with serving(tmp_path) as handle:
        async with connected(handle) as client:
            status = await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD, authzid='alice')}")
            assert status.startswith("281"), status
        async with connected(handle) as client:
            status = await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD, authzid='bob')}")
            assert status.startswith("481"), status


# -- CAPABILITIES (RFC 4643 2.1, 2.2) -------------------------------------------


async def test_capabilities_before_and_after_login(tmp_path):
    """RFC 4643 2.1/2.2: before login AUTHINFO USER SASL and SASL PLAIN; after it no AUTHINFO line."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        before = await capabilities(client)
        assert "AUTHINFO USER SASL" in before
        assert "SASL PLAIN" in before
        assert (await login(client)).startswith("281")
        after = await capabilities(client)
        assert not [c for c in after if c.split()[0] == "AUTHINFO"]
        assert "VERSION 2" in after and "READER" in after


async def test_sasl_capability_kept_after_login(tmp_path):
    """RFC 4643 2.2: the server MUST continue to advertise SASL with the same mechanisms after authentication."""
    async with serving(tmp_path) as handle, connected(handle) as client:
        before = [c for c in await capabilities(client) if c.split()[0] == "SASL"]
        assert before == ["SASL PLAIN"]
        assert (await login(client)).startswith("281")
        after = [c for c in await capabilities(client) if c.split()[0] == "SASL"]
        assert after == before


# -- cleartext (RFC 4643 2.2, 2.3.2; RFC 4642) ----------------------------------


async def test_cleartext_refused_with_483(tmp_path):
    """RFC 4643 2.3.2/2.4.2: without a secure channel AUTHINFO is 483 and only bare AUTHINFO is advertised."""
    auth = AuthSettings(loopback_is_secure=False, failure_delay=0.0)
    async with serving(tmp_path, auth) as handle, connected(handle) as client:
        caps = await capabilities(client)
        assert [c for c in caps if c.split()[0] == "AUTHINFO"] == ["AUTHINFO"]
        assert (await client.cmd("AUTHINFO USER alice")).startswith("483")
        assert (await client.cmd(f"AUTHINFO PASS {PASSWORD}")).startswith("483")
        assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD)}")).startswith("483")
        assert (await client.cmd("AUTHINFO SASL PLAIN")).startswith("483")
        assert (await client.cmd("DATE")).startswith("111")


async def test_cleartext_allowed_when_configured(tmp_path):
    """Spec (allow_cleartext) + RFC 4643 2.3.2 'SHOULD be configurable': cleartext AUTHINFO works."""
    auth = AuthSettings(loopback_is_secure=False, allow_cleartext=True, failure_delay=0.0)
    async with serving(tmp_path, auth) as handle, connected(handle) as client:
        assert "AUTHINFO USER SASL" in await capabilities(client)
        assert (await login(client)).startswith("281")


# -- throttling and lockout (spec) ------------------------------------------------


async def _timed(coro) -> tuple[str, float]:
    start = time.monotonic()
    result = await coro
    return result, time.monotonic() - start


async def test_failed_logins_from_one_address_are_slowed(tmp_path):
    """Spec: each recent failure from an address adds failure_delay: the 3rd wrong attempt takes >= 0.35 s."""
    auth = AuthSettings(failure_delay=0.2, max_failure_delay=10.0, lockout_failures=100)
    async with serving(tmp_path, auth) as handle, connected(handle) as client:
        durations = []
        for _ in range(3):
            assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
            status, took = await _timed(client.cmd("AUTHINFO PASS wrong-password"))
            assert status.startswith("481")
            durations.append(took)
        assert durations[2] >= 0.35, durations
        assert durations[2] > durations[0]


async def test_delay_applies_across_connections_and_accounts(tmp_path):
    """Spec: the delay is per address, so a new connection or another user name does not escape it."""
    auth = AuthSettings(failure_delay=0.1, max_failure_delay=10.0, lockout_failures=100)
    async with serving(tmp_path, auth) as handle:
        for user in ("alice", "bob"):
            async with connected(handle) as client:
                assert (await login(client, user, "wrong-password")).startswith("481")
        async with connected(handle) as client:
            assert (await client.cmd("AUTHINFO USER nosuchuser")).startswith("381")
            status, took = await _timed(client.cmd("AUTHINFO PASS wrong-password"))
            assert status.startswith("481")
            assert took >= 0.18, took


async def test_delay_is_capped(tmp_path):
    """Spec: the delay never exceeds max_failure_delay."""
    auth = AuthSettings(failure_delay=0.1, max_failure_delay=0.15, lockout_failures=100)
    async with serving(tmp_path, auth) as handle, connected(handle) as client:
        for _ in range(3):
            assert (await login(client, "alice", "wrong-password")).startswith("481")
        assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
        status, took = await _timed(client.cmd("AUTHINFO PASS wrong-password"))
        assert status.startswith("481")
        assert 0.12 <= took < 0.28, took


async def test_successful_login_keeps_the_address_delay(tmp_path):
    """Issue 13: a successful login takes back only its own attempt; the address keeps the
    delay its failures earned, so logging into one's own account does not reset a guesser."""
    auth = AuthSettings(failure_delay=0.15, max_failure_delay=10.0, lockout_failures=100)
    async with serving(tmp_path, auth) as handle:
        async with connected(handle) as client:
            assert (await login(client, "alice", "wrong-password")).startswith("481")
            assert (await login(client, "alice", "wrong-password")).startswith("481")
            assert (await login(client)).startswith("281")
        async with connected(handle) as client:
            assert (await client.cmd("AUTHINFO USER bob")).startswith("381")
            status, took = await _timed(client.cmd("AUTHINFO PASS wrong-password"))
            assert status.startswith("481")
            assert took >= 0.28, took  # two failures: 2 x 0.15 s, the success not counted


async def test_lockout_after_repeated_failures(tmp_path):
    """Spec: after lockout_failures failures from an address the right password is refused there
    (481) until lockout_seconds pass."""
    auth = AuthSettings(failure_delay=0.0, lockout_failures=3, lockout_seconds=1.0)
    async with serving(tmp_path, auth) as handle:
        async with connected(handle) as client:
            for _ in range(3):
                assert (await login(client, "alice", "wrong-password")).startswith("481")
            assert (await login(client)).startswith("481")
            assert (await client.cmd(f"AUTHINFO SASL PLAIN {plain('alice', PASSWORD)}")).startswith("481")
        async with connected(handle) as client:
            assert (await login(client)).startswith("481")
        async with connected(handle) as client:  # the lock is per account: bob still logs in
            assert (await login(client, "bob")).startswith("281")
        await asyncio.sleep(1.1)
        async with connected(handle) as client:
            assert (await login(client)).startswith("281")


async def test_unknown_name_takes_as_long_as_a_wrong_password(tmp_path):
    """RFC 4643 2.4.3: a failed AUTHINFO is 481 whether the name exists or not; its timing
    must not tell either: an unknown name costs the same scrypt as a wrong password."""
    async with serving(tmp_path) as handle:
        await handle.store.add_account("carol", email="carol@example.com",
                                       password_hash=hash_password(PASSWORD))  # the default cost
        async with connected(handle) as client:
            assert (await login(client, "nosuchuser", "x")).startswith("481")  # warm-up
            wrong, unknown = [], []
            for _ in range(3):
                status, took = await _timed(login(client, "carol", "wrong-password"))
                assert status.startswith("481")
                wrong.append(took)
                status, took = await _timed(login(client, "nosuchuser", "wrong-password"))
                assert status.startswith("481")
                unknown.append(took)
        assert min(unknown) >= 0.5 * sorted(wrong)[1], (wrong, unknown)
