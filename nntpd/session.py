"""Per-connection state and command dispatch.

Theory of operation: a connection starts unauthenticated, in plain TCP or
in TLS (implicit TLS port). STARTTLS moves plain -> TLS and forgets what
the client was told (capabilities change). AUTHINFO moves
unauthenticated -> authenticated; the account, not any header, then gives
the role used for access rules and for the trusted X-Poster-Role header.
Inside a POST the server reads a block and hands it to the handler.

A Session knows the selected group, the current article number, whether
the client asked for CAPABILITIES (which changes the names in LIST
OVERVIEW.FMT, as INN does) and who the client is. It does no I/O: the
server feeds it commands and writes the Responses it returns.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass, field

from storage import AccountInfo, GroupInfo, Store

from .access import TRUSTED, AccessPolicy, Who
from .commands import load_all
from .commands.auth import AccountWatch, recheck_account
from .config import Settings
from .guards import Guards
from .protocol import Command, NNTPError, Response

log = logging.getLogger("nntpd.session")

COMMANDS = load_all()


class ServerContext:
    """What all sessions of one server share: store, settings, policy, guards, TLS."""

    def __init__(self, settings: Settings, store: Store, tls: ssl.SSLContext | None = None,
                 guards: Guards | None = None) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        self.policy = AccessPolicy(settings.access)
        self.guards = guards if guards is not None else Guards.local(settings)
        self.post_rate = self.guards.post_rate
        self.logins = self.guards.logins
        self.account_watch = AccountWatch(store)  # open sessions see account changes


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Session:
    ctx: ServerContext
    address: str = ""
    port: int = 0
    secure: bool = False
    group: GroupInfo | None = None
    article_number: int | None = None
    saw_capabilities: bool = False
    account: AccountInfo | None = None
    pending_user: str | None = None
    _loopback: bool | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def peer(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self._loopback is None:
            self._loopback = is_loopback(self.address)
        return self._loopback

    @property
    def who(self) -> Who:
        return Who(self.loopback, self.account.role if self.account else None)

    @property
    def posting_allowed(self) -> bool:
        return self.ctx.policy.may_post_somewhere(self.who)

    @property
    def auth_allowed(self) -> bool:
        """AUTHINFO only where a password cannot be sniffed, unless configured otherwise (RFC 4643 2.2)."""
        auth = self.settings.auth
        return self.secure or auth.allow_cleartext or (auth.loopback_is_secure and self.loopback)

    @property
    def views_visible(self) -> bool:
        """unanswered.* and awaiting-staff.* are for staff and MVPs unless the config opens them."""
        return self.settings.views.visible_to == "anyone" or self.who.role in TRUSTED

    def can_read(self, group: str) -> bool:
        return self.ctx.policy.can_read(group, self.who)

    def denied(self, what: str) -> NNTPError:
        """480 when logging in could help, else 502 (RFC 4643 2.1, RFC 3977 3.2.1)."""
        if self.account is None:
            return NNTPError(480, f"Authentication required for {what}")
        return NNTPError(502, f"Access denied: {what}")

    def require_group(self) -> GroupInfo:
        if self.group is None:
            raise NNTPError(412, "No newsgroup selected")
        return self.group

    def require_current(self) -> tuple[GroupInfo, int]:
        group = self.require_group()
        if self.article_number is None:
            raise NNTPError(420, "Current article number is invalid")
        return group, self.article_number

    def reset_after_tls(self) -> None:
        """RFC 4642 2.2.2: forget everything learned from the client before TLS."""
        self.secure = True
        self.saw_capabilities = False
        self.pending_user = None
        self.group = None
        self.article_number = None

    async def dispatch(self, cmd: Command) -> Response:
        spec = COMMANDS.get(cmd.verb)
        if spec is None:
            return Response(500, f"Unknown command {cmd.verb[:40]}")
        try:
            if self.account is not None:  # disabled or demoted since? (anonymous sessions pay nothing)
                await recheck_account(self)
            return await spec.handler(self, cmd.args)
        except NNTPError as exc:
            return Response(exc.code, exc.text)
