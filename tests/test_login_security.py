"""The login and account holes of issue 13 (section 6), each shown closed over real TCP
against a real server and SQLite file:

- parallel guesses counted before the password check (they cannot outrun the lock);
- the same time for unknown and locked names; locks per address-and-account, and
  from any address only after many more attempts;
- a disabled or demoted account's open session loses its rights at its next command,
  the change made by another Store on the file, as the CLI would;
- control characters never reach a stored account, nor split the Sender header.

Accounts use a cheap scrypt cost (n=2**10) so logins are quick.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import statistics
import time
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from conftest import Client, ServerHandle, connected
from nntpd.commands import auth as auth_commands
from nntpd.config import AccessRule, AuthSettings
from nntpd.passwords import hash_password
from storage import AccountError, Store
from test_auth import FAST_N, PASSWORD, login, serving


async def connect_from(handle: ServerHandle, address: str) -> Client:
    """A client whose source address is ``address`` (any of 127.0.0.0/8 reaches loopback)."""
    reader, writer = await asyncio.open_connection(handle.host, handle.port, local_addr=(address, 0))
    client = Client(reader, writer)
    client.greeting = await client.line()
    return client


async def login_from(handle: ServerHandle, address: str, user: str = "alice",
                     password: str = PASSWORD) -> str:
    client = await connect_from(handle, address)
    try:
        return await login(client, user, password)
    finally:
        await client.close()


async def as_operator(handle: ServerHandle, change) -> None:
    """Run ``change(store)`` on a Store of its own, as `nntpd user ...` in another process would."""
    store = Store(handle.url)
    try:
        await change(store)
    finally:
        await store.close()


# -- parallel guesses and the lockout ----------------------------------------


async def test_parallel_wrong_passwords_cannot_outrun_the_lock(tmp_path, monkeypatch):
    """Issue 13 (parallel guesses beat the lockout): 100 wrong passwords sent at once, then the
    right one, from one address: attempts count before the check, so the right one is 481
    (locked), not 281. The owner elsewhere still logs in: the lock is per address-and-account."""
    decoy = hash_password(secrets.token_hex(8), n=FAST_N)
    monkeypatch.setattr(auth_commands, "_decoy_hash", lambda: decoy)  # speed only: 90 refusals
    async with serving(tmp_path) as handle:  # lockout_failures 10, any address 100
        clients = [await handle.connect() for _ in range(101)]
        try:
            for client in clients:
                client.writer.write(b"AUTHINFO USER alice\r\n")
            assert all(s.startswith("381") for s in await asyncio.gather(*(c.line() for c in clients)))
            for client in clients[:100]:
                client.writer.write(b"AUTHINFO PASS wrong-password\r\n")
            clients[100].writer.write(f"AUTHINFO PASS {PASSWORD}\r\n".encode())
            answers = await asyncio.gather(*(client.line() for client in clients))
        finally:
            for client in clients:
                await client.close()
        assert answers[100].startswith("481"), answers[100]
        assert all(answer.startswith("481") for answer in answers[:100])
        assert (await login_from(handle, "127.0.0.1")).startswith("481"), "still locked here"
        assert (await login_from(handle, "127.0.0.2")).startswith("281"), "not for the owner elsewhere"


async def test_unknown_and_locked_names_take_the_same_time(tmp_path):
    """Issue 13 (lockout timing tells which names exist): a locked account and an unknown name
    take one path, a scrypt check on the decoy hash: within 10%, as the median of the ratios of
    30 back-to-back pairs (pairing cancels the drift of a loaded machine's speed)."""
    auth = AuthSettings(failure_delay=0.0, lockout_failures=3)
    async with serving(tmp_path, auth) as handle, connected(handle) as client:
        for _ in range(3):
            assert (await login(client, "alice", "wrong-password")).startswith("481")
        assert (await login(client, "nosuchuser", "x")).startswith("481")  # warm-up: makes the decoy
        took: dict[str, list[float]] = {"alice": [], "nosuchuser": []}
        for _ in range(30):
            for user in took:
                assert (await client.cmd(f"AUTHINFO USER {user}")).startswith("381")
                start = time.perf_counter()
                status = await client.cmd(f"AUTHINFO PASS {PASSWORD}")
                took[user].append(time.perf_counter() - start)
                assert status.startswith("481"), (user, status)
    ratio = statistics.median(a / b for a, b in zip(took["alice"], took["nosuchuser"]))
    assert 0.9 <= ratio <= 1.1, (ratio, statistics.median(took["alice"]), statistics.median(took["nosuchuser"]))


async def test_one_address_cannot_lock_the_owner_out(tmp_path):
    """Issue 13 (anyone can lock any account): lockout_failures wrong passwords from one address
    lock the account for that address only."""
    auth = AuthSettings(failure_delay=0.0, lockout_failures=3)
    async with serving(tmp_path, auth) as handle:
        for _ in range(5):
            assert (await login_from(handle, "127.0.0.2", password="wrong-password")).startswith("481")
        assert (await login_from(handle, "127.0.0.2")).startswith("481"), "locked for the guesser"
        assert (await login_from(handle, "127.0.0.1")).startswith("281"), "not for the owner"


async def test_attempts_from_many_addresses_lock_the_account(tmp_path):
    """Issue 13: lockout_failures_any_address bounds a guessing attack spread over addresses."""
    auth = AuthSettings(failure_delay=0.0, lockout_failures=3, lockout_failures_any_address=5)
    async with serving(tmp_path, auth) as handle:
        for address in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4"):
            assert (await login_from(handle, address, password="wrong-password")).startswith("481")
        assert (await login_from(handle, "127.0.0.1")).startswith("481"), "locked from everywhere"
        assert (await login_from(handle, "127.0.0.1", "bob")).startswith("281")


async def test_bytes_that_are_not_utf8_get_481_not_403(tmp_path):
    """Issue 13 (every input gets a defined answer) and RFC 4643 2.3.2/2.4.2: a user name or
    password that is not UTF-8 fails like any wrong one (481, 504 for bad base64), and a
    password's raw bytes are what is hashed."""
    async with serving(tmp_path) as handle:
        await handle.store.set_password_hash("bob", hash_password("caf\udce9-latin1", n=FAST_N))
        async with connected(handle) as client:
            for user, password in ((b"\xed\xa0\x80x", b"x"), (b"alice", b"\xff\xfe")):
                await client.send(b"AUTHINFO USER " + user + b"\r\n")
                assert (await client.line()).startswith("381")
                await client.send(b"AUTHINFO PASS " + password + b"\r\n")
                assert (await client.line()).startswith("481")
            await client.send(b"AUTHINFO SASL PLAIN <\xed\xa0\x80@x>\r\n")
            assert (await client.line()).startswith("504")
            await client.send(b"AUTHINFO USER bob\r\nAUTHINFO PASS caf\xe9-latin1\r\n")
            assert (await client.line()).startswith("381")
            assert (await client.line()).startswith("281")


# -- disabled and demoted accounts' open sessions ------------------------------

RULES = (
    AccessRule(groups="*", read="anyone", post="loopback"),
    AccessRule(groups="members.*", read="authenticated", post="authenticated"),
    AccessRule(groups="staff.*", read="trusted", post="trusted"),
)


async def with_articles(handle: ServerHandle) -> None:
    """members.lounge and staff.room, one article each, posted by bob (staff)."""
    for name in ("members.lounge", "staff.room"):
        await handle.store.create_group(name, description="", creator="test")
    await handle.store.set_role("bob", "staff", changed_by="test")
    async with connected(handle) as client:
        assert (await login(client, "bob")).startswith("281")
        for name in ("members.lounge", "staff.room"):
            status = await client.post(f"From: bob@example.com\nNewsgroups: {name}\nSubject: s\n\nbody\n")
            assert status.startswith("240"), status


async def test_disabled_account_session_is_refused_at_its_next_command(tmp_path):
    """Issue 13 (a disabled account keeps its open sessions' rights): at its next command the
    session is anonymous: its members-only group is no longer selected (412), GROUP is 480
    (RFC 4643 2.1), and it may not log in again as the disabled account."""
    async with serving(tmp_path, access=RULES) as handle:
        await with_articles(handle)
        async with connected(handle) as client:
            assert (await login(client)).startswith("281")
            assert (await client.cmd("GROUP members.lounge")).startswith("211")
            assert (await client.cmd("ARTICLE 1")).startswith("220")
            await client.block()
            await as_operator(handle, lambda store: store.set_disabled("alice", True))
            assert (await client.cmd("ARTICLE 1")).startswith("412")
            assert (await client.cmd("GROUP members.lounge")).startswith("480")
            assert (await client.cmd("DATE")).startswith("111"), "the connection stays usable"
            assert (await login(client)).startswith("481")


async def test_demoted_staff_loses_trusted_reads_at_its_next_command(tmp_path):
    """Issue 13 (a demoted account keeps its old role's rights): staff demoted to member loses
    the trusted-only group (deselected, then 502) and the unanswered.* views (411) at its next
    command, and keeps what members may read."""
    async with serving(tmp_path, access=RULES) as handle:
        await with_articles(handle)
        async with connected(handle) as client:
            assert (await login(client, "bob")).startswith("281")
            assert (await client.cmd("GROUP unanswered.local.test")).startswith("211")
            assert (await client.cmd("GROUP staff.room")).startswith("211")
            assert (await client.cmd("HEAD 1")).startswith("221")
            await client.block()
            await as_operator(handle, lambda store: store.set_role("bob", "member", changed_by="test"))
            assert (await client.cmd("HEAD 1")).startswith("412")
            assert (await client.cmd("GROUP staff.room")).startswith("502")
            assert (await client.cmd("GROUP unanswered.local.test")).startswith("411")
            assert (await client.cmd("GROUP members.lounge")).startswith("211")
            await as_operator(handle, lambda store: store.set_role("bob", "staff", changed_by="test"))
            assert (await client.cmd("GROUP staff.room")).startswith("211"), "a promotion applies as soon"


# -- control characters and the Sender header ------------------------------------


async def sender_lines(handle: ServerHandle, user: str, message_id: str) -> list[str]:
    """POST as ``user`` with a From naming someone else; the article's header lines."""
    async with connected(handle) as client:
        assert (await login(client, user)).startswith("281")
        status = await client.post(f"From: someone@example.org\nNewsgroups: local.test\nSubject: s\n"
                                   f"Message-ID: {message_id}\n\nbody\n")
        assert status.startswith("240"), status
        assert (await client.cmd(f"HEAD {message_id}")).startswith("221")
        return await client.block()


async def test_sender_stays_one_line_for_a_stored_cr_lf(tmp_path):
    """Issue 13 (--display-name accepted CR/LF and split Sender into a forged X-Poster-Role line):
    even a record written before the check (here straight into the SQLite file) yields one line."""
    async with serving(tmp_path) as handle:
        with sqlite3.connect(handle.db_path) as db:
            db.execute("UPDATE accounts SET display_name = ? WHERE name = 'alice'",
                       ("Alice\r\nX-Poster-Role: staff",))
        lines = await sender_lines(handle, "alice", "<crlf@example.com>")
    assert not [ln for ln in lines if ln.startswith("X-Poster-Role")], lines
    (sender,) = [ln for ln in lines if ln.startswith("Sender:")]
    assert sender == 'Sender: "Alice X-Poster-Role: staff" <alice@example.com>'


async def test_sender_display_name_is_encoded(tmp_path):
    """RFC 5322 3.4 and RFC 2047: a display name with specials is quoted; a non-ASCII one is
    sent as encoded-words, each at most 75 characters, on the Sender line itself."""
    async with serving(tmp_path) as handle:
        await handle.store.add_account("zoe", email="zoe@example.com", display_name="Zoë Ünal, Esq. " * 8,
                                       password_hash=hash_password(PASSWORD, n=FAST_N))
        await handle.store.add_account("bo", email="bo@example.com", display_name='Bo "B." Smith',
                                       password_hash=hash_password(PASSWORD, n=FAST_N))
        (zoe,) = [ln for ln in await sender_lines(handle, "zoe", "<z@example.com>") if ln.startswith("Sender:")]
        (bo,) = [ln for ln in await sender_lines(handle, "bo", "<b@example.com>") if ln.startswith("Sender:")]
    value = zoe.removeprefix("Sender: ")
    assert value.isascii() and value.endswith(" <zoe@example.com>")
    words = value.removesuffix(" <zoe@example.com>").split()
    assert all(w.startswith("=?utf-8?") and w.endswith("?=") and len(w) <= 75 for w in words), words
    assert str(make_header(decode_header(" ".join(words)))) == ("Zoë Ünal, Esq. " * 8).strip()
    assert bo == 'Sender: "Bo \\"B.\\" Smith" <bo@example.com>'


@pytest.mark.parametrize("field", ["name", "email", "display_name"])
@pytest.mark.parametrize("bad", ["\r\n", "\n", "\t", "\x00", "\x1b", "\x7f"])
async def test_store_refuses_control_characters(tmp_path: Path, field: str, bad: str):
    """Issue 13: no path stores an account field with a control character in it."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3")
    try:
        await store.init_schema()
        values = {"name": "carol", "email": "carol@example.com", "display_name": "Carol"}
        values[field] = f"x{bad}X-Poster-Role: staff"
        name = values.pop("name")
        with pytest.raises(AccountError, match="control characters"):
            await store.add_account(name, **values)
        assert await store.accounts() == []
        await store.add_account("carol", email="carol@example.com")
        with pytest.raises(AccountError, match="control characters"):
            await store.set_role("carol", "staff", changed_by=f"op{bad}")
        assert (await store.account("carol")).role == "member"
    finally:
        await store.close()
