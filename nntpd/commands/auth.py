"""AUTHINFO USER/PASS and SASL PLAIN (RFC 4643), STARTTLS (RFC 4642)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from functools import cache
from typing import TYPE_CHECKING

from ..passwords import hash_password, verify_password
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
    """A hash no password matches, made with the default cost (once, on first use)."""
    return hash_password(secrets.token_hex(16))


def _check_password(password: str, stored: str) -> bool:
    """An empty ``stored`` (unknown name, or no password set) costs the same scrypt
    as a wrong password, so the time of the answer does not tell which names exist."""
    return verify_password(password, stored or _decoy_hash())


async def login(session: Session, user: str, password: str) -> Response:
    """Check a password; slowed down per failure from the same address, logged either way."""
    ctx = session.ctx
    delay = ctx.logins.delay_for(session.address)
    if delay:
        await asyncio.sleep(delay)
    if ctx.logins.locked(user):
        log.warning("%s: login for %s refused: locked after repeated failures", session.peer, user)
        return Response(481, "Authentication failed")
    account = await session.store.account(user)
    stored = account.password_hash if account is not None else ""
    ok = await asyncio.to_thread(_check_password, password, stored)
    if not ok or account is None or account.disabled:
        ctx.logins.failure(session.address, user if account is not None else None)
        reason = "disabled account" if ok else "wrong user or password"
        log.warning("%s: login failed for %s: %s", session.peer, user, reason)
        return Response(481, "Authentication failed")
    ctx.logins.success(session.address, user)
    session.account = account
    session.pending_user = None
    log.info("%s: logged in as %s (%s)", session.peer, account.name, account.role)
    return Response(281, "Authentication accepted")


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
            result = _sasl_plain(session, args[2].encode())
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
