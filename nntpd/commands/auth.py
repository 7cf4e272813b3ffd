"""AUTHINFO USER/PASS and SASL PLAIN (RFC 4643), STARTTLS (RFC 4642)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from functools import cache
from typing import TYPE_CHECKING

from storage import AccountInfo, Store, view_of

from ..passwords import decoy_hash, verify_password
from ..protocol import NNTPError, Response, syntax_error
from . import command

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("nntpd.auth")


def _check_can_authenticate(session: Session) -> None:
    if session.account is not None:
        raise NNTPError(502, "Already authenticated")
    if not session.auth_allowed:
        raise NNTPError(483, "Encryption required: use STARTTLS or the TLS port first")


@cache
def _decoy_hash() -> str:
    """The decoy hash of this process (see passwords.decoy_hash)."""
    return decoy_hash()


def _check_password(password: str, stored: str) -> bool:
    """A ``stored`` that is not a scrypt hash (unknown or locked name, no password set)
    costs the same scrypt as a wrong password, so the time of the answer does not tell
    which names exist."""
    return verify_password(password, stored if stored.startswith("scrypt$") else _decoy_hash())


async def _find_account(session: Session, user: str) -> AccountInfo | None:
    """The account named ``user``; None for a name with bytes that are not UTF-8 (kept as
    surrogates), which no account has and the database cannot be asked about."""
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return await session.store.account(user)


async def login(session: Session, user: str, password: str) -> Response:
    """Check a password, counted before the check (see LoginThrottle), logged either way.

    Every answer takes one path: the account is looked up and one scrypt
    runs (on the decoy hash when the name is unknown, has no hash or is
    locked), and only then is the answer chosen, so its time does not tell
    which names exist or which are locked.
    """
    throttle = session.ctx.logins
    attempt = throttle.begin(session.address)
    if attempt.delay:
        await asyncio.sleep(attempt.delay)
    account = await _find_account(session, user)
    admitted = account is not None and throttle.admit(attempt, account.name)
    stored = account.password_hash if account is not None and admitted else ""
    ok = await asyncio.to_thread(_check_password, password, stored)
    if not ok or account is None or account.disabled:  # ok implies an admitted account
        reason = ("disabled account" if ok else "wrong user or password" if account is None or admitted
                  else "locked after repeated attempts")
        log.warning("%s: login failed for %s: %s", session.peer, user, reason)
        return Response(481, "Authentication failed")
    throttle.success(attempt)
    session.account = account
    session.pending_user = None
    log.info("%s: logged in as %s (%s)", session.peer, account.name, account.role)
    return Response(281, "Authentication accepted")


class AccountWatch:
    """The accounts of one process's logged-in sessions, kept fresh for one small read
    per event-loop turn, whatever the number of sessions and commands.

    The accounts' stamp (storage/accounts.py) changes in the transaction of
    every account change, by any process. It is read at most once per loop
    turn and shared by every command of that turn; a command whose bytes
    arrived after a change is always served in a later turn than the one
    that began before the change, so it sees it. Accounts are read again
    only after the stamp changed, once per name.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._turn_stamp: str | None = None
        self._stamp: str | None = None
        self._fresh: dict[str, AccountInfo | None] = {}

    async def _current_stamp(self) -> str:
        if self._turn_stamp is None:
            self._turn_stamp = await self._store.accounts_stamp()
            asyncio.get_running_loop().call_soon(self._end_turn)
        return self._turn_stamp

    def _end_turn(self) -> None:
        self._turn_stamp = None

    async def account(self, name: str) -> AccountInfo | None:
        """The account as it stands now; None when it is gone."""
        stamp = await self._current_stamp()
        if stamp != self._stamp:
            self._stamp, self._fresh = stamp, {}
        if name in self._fresh:
            return self._fresh[name]
        account = await self._store.account(name)
        if stamp == self._stamp:  # not if the stamp moved on while this read waited
            self._fresh[name] = account
        return account


async def recheck_account(session: Session) -> None:
    """Before a logged-in session's command: apply a disable or a role change made since.

    A disabled (or removed) account's session drops back to anonymous, as if
    it had never logged in: 480 where logging in would help, and it may log
    in again (as someone else). A changed role applies from this command on.
    Either way a selected group the session may no longer read is deselected.
    """
    assert session.account is not None
    account = await session.ctx.account_watch.account(session.account.name)
    if account is session.account:
        return
    if account == session.account:  # the same record, read again: keep the shared copy
        session.account = account
        return
    if account is None or account.disabled:
        log.info("%s: %s is disabled: the session is anonymous now", session.peer, session.account.name)
        account = None
    session.account = account
    group = session.group
    if group is not None:
        view = view_of(group.name)
        if not session.can_read(view[1] if view else group.name) or (view and not session.views_visible):
            session.group, session.article_number = None, None


def _sasl_plain(session: Session, encoded: bytes) -> object:
    text = encoded.strip()
    if text == b"*":
        return Response(481, "Authentication cancelled")
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return Response(504, "Base64 encoding error")  # RFC 4643 2.4.1
    try:
        authzid, user, password = decoded.split("\0")
    except ValueError:
        return Response(482, "Malformed SASL PLAIN response")
    if authzid and authzid != user:  # RFC 4616 2: acting as someone else is not allowed
        log.warning("%s: SASL PLAIN as %s for %s refused", session.peer, user, authzid)
        return Response(481, "Authentication failed")
    return login(session, user, password)


@command("AUTHINFO", "AUTHINFO USER name|PASS password|SASL PLAIN [initial-response]")
async def handle_authinfo(session: Session, args: tuple[str, ...]) -> Response:
    if not args:
        raise syntax_error("Usage: AUTHINFO USER|PASS|SASL")
    sub = args[0].upper()
    if sub == "USER":
        if len(args) != 2:
            raise syntax_error("Usage: AUTHINFO USER name")
        _check_can_authenticate(session)
        session.pending_user = args[1]
        return Response(381, "Password required")
    if sub == "PASS":
        if len(args) != 2:
            raise syntax_error("Usage: AUTHINFO PASS password")
        _check_can_authenticate(session)
        if session.pending_user is None:
            raise NNTPError(482, "Authentication commands issued out of sequence")
        user, session.pending_user = session.pending_user, None
        return await login(session, user, args[1])
    if sub == "SASL":
        if len(args) not in (2, 3):
            raise syntax_error("Usage: AUTHINFO SASL PLAIN [initial-response]")
        _check_can_authenticate(session)
        if args[1].upper() != "PLAIN":
            raise NNTPError(503, f"SASL mechanism {args[1][:20]} not supported")
        if len(args) == 3:
            result = _sasl_plain(session, args[2].encode("utf-8", "surrogateescape"))
            return result if isinstance(result, Response) else await result  # type: ignore[misc]

        async def continuation(line: bytes) -> Response:
            result = _sasl_plain(session, line)
            return result if isinstance(result, Response) else await result  # type: ignore[misc]

        return Response(383, "=", then_read_line=continuation)  # "=" is an empty challenge (2.4.1)
    raise syntax_error(f"Unknown AUTHINFO subcommand {sub[:20]}")


@command("STARTTLS", "STARTTLS")
async def handle_starttls(session: Session, args: tuple[str, ...]) -> Response:
    if args:
        raise syntax_error()
    if session.secure:
        raise NNTPError(502, "Already using TLS")
    if session.account is not None:
        raise NNTPError(502, "STARTTLS is not allowed after authentication")
    if session.ctx.tls is None:
        raise NNTPError(580, "Can not initiate TLS negotiation: TLS is not configured")
    return Response(382, "Continue with TLS negotiation", start_tls=True)
