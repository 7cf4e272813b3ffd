"""Accounts and roles: the store's half that the CLI's `user` commands and AUTHINFO use."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy import Connection

from .engine import Database

from .models import Account, Meta, RoleChange

ROLES = ("member", "staff", "mvp")

_AC = Account.__table__
_RC = RoleChange.__table__
_META = Meta.__table__
# The meta row every account change rewrites, in the same transaction (see accounts_stamp).
STAMP_KEY = "accounts_changed"
_STAMP = select(_META.c.value).where(_META.c.key == STAMP_KEY)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ACCOUNT_COLUMNS = (_AC.c.name, _AC.c.email, _AC.c.display_name, _AC.c.role, _AC.c.disabled,
                    _AC.c.password_hash, _AC.c.created_at)


class AccountError(Exception):
    """An operator-facing account failure (exists, unknown, bad role)."""


def check_text(what: str, value: str) -> None:
    """Refuse control characters (TAB, CR and LF included): these fields end up
    in header lines and in one-line listings, where a CR or LF starts a new line."""
    if CONTROL.search(value):
        raise AccountError(f"{what} must not contain control characters: {value!r}")


def _changed(conn: Connection) -> None:
    """Give the accounts a new stamp; called inside every transaction that changes one."""
    token = secrets.token_hex(8)
    if not conn.execute(update(_META).where(_META.c.key == STAMP_KEY).values(value=token)).rowcount:
        conn.execute(insert(_META).values(key=STAMP_KEY, value=token))


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    email: str
    display_name: str
    role: str
    disabled: bool
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoleChangeInfo:
    account: str
    old_role: str
    new_role: str
    changed_by: str
    changed_at: datetime


class AccountStore:
    """Mixed into Store; needs ``_db``."""

    _db: Database

    async def add_account(self, name: str, *, email: str, display_name: str = "",
                          password_hash: str = "") -> AccountInfo:
        check_text("user name", name)
        check_text("email address", email)
        check_text("display name", display_name)
        if not email.isascii():  # it goes into the Sender header as it is
            raise AccountError(f"email address must be ASCII: {email!r}")
        stmt = insert(_AC).values(
            name=name, email=email, display_name=display_name,
            password_hash=password_hash, role="member", disabled=False,
            created_at=datetime.now(timezone.utc),
        )

        def run(conn: Connection) -> None:
            conn.execute(stmt)
            _changed(conn)

        try:
            await self._db.write(run)
        except IntegrityError:
            raise AccountError(f"user {name} already exists") from None
        return await self._must_account(name)

    async def account(self, name: str) -> AccountInfo | None:
        stmt = select(*_ACCOUNT_COLUMNS).where(_AC.c.name == name)
        row = await self._db.read_short(lambda conn: conn.execute(stmt).first())
        return AccountInfo(*row) if row else None

    async def accounts_stamp(self) -> str:
        """A value that changes with every committed account change ("" before the first).

        Why: a server re-checks the accounts of its open sessions only when
        this changes; one point read on the loop's connection (compiled once)
        instead of a full account read per command.
        """
        rows = await self._db.rows(_STAMP, {})
        return rows[0][0] if rows else ""

    async def _must_account(self, name: str) -> AccountInfo:
        account = await self.account(name)
        if account is None:
            raise AccountError(f"no such user: {name!r}")
        return account

    async def accounts(self, role: str | None = None) -> list[AccountInfo]:
        stmt = select(*_ACCOUNT_COLUMNS).order_by(_AC.c.name)
        if role is not None:
            stmt = stmt.where(_AC.c.role == role)
        return [AccountInfo(*r) for r in await self._db.read(lambda conn: conn.execute(stmt).all())]

    async def _update_account(self, name: str, **values: object) -> AccountInfo:
        stmt = update(_AC).where(_AC.c.name == name).values(**values)

        def run(conn: Connection) -> int:
            changed = conn.execute(stmt).rowcount
            if changed:
                _changed(conn)
            return changed

        if not await self._db.write(run):
            raise AccountError(f"no such user: {name!r}")
        return await self._must_account(name)

    async def set_password_hash(self, name: str, password_hash: str) -> AccountInfo:
        return await self._update_account(name, password_hash=password_hash)

    async def set_disabled(self, name: str, disabled: bool) -> AccountInfo:
        return await self._update_account(name, disabled=disabled)

    async def set_role(self, name: str, role: str, *, changed_by: str) -> AccountInfo:
        """Change a role and record who did it; takes effect at the next command of open sessions."""
        check_text("changed by", changed_by)
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")

        def run(conn: Connection) -> None:
            old = conn.execute(select(_AC.c.role).where(_AC.c.name == name)).scalar()
            if old is None:
                raise AccountError(f"no such user: {name!r}")
            if old != role:
                conn.execute(update(_AC).where(_AC.c.name == name).values(role=role))
                conn.execute(insert(_RC).values(
                    account=name, old_role=old, new_role=role, changed_by=changed_by,
                    changed_at=datetime.now(timezone.utc),
                ))
                _changed(conn)

        await self._db.write(run)
        return await self._must_account(name)

    async def role_changes(self, name: str) -> list[RoleChangeInfo]:
        stmt = (select(_RC.c.account, _RC.c.old_role, _RC.c.new_role, _RC.c.changed_by,
                       _RC.c.changed_at).where(_RC.c.account == name).order_by(_RC.c.id))
        return [RoleChangeInfo(*r) for r in await self._db.read(lambda conn: conn.execute(stmt).all())]
