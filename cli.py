"""The operator's command line: parses options and calls the same Store the server uses."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import click

from nntpd.article import is_valid_group_name
from nntpd.config import ConfigError, Settings, load_settings
from nntpd.passwords import hash_password
from storage import AccountError, Store, StoreError

T = TypeVar("T")

SAMPLE_GROUP = "local.test"
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Context:
    def __init__(self, config: str | None, database: str | None) -> None:
        self.config = config
        self.database = database
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config, self.database)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings

    def store(self) -> Store:
        return Store(self.settings.database.url, path_host=self.settings.server.path_host)


def run_with_store(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command body with an opened, initialised store; StoreError -> one line, exit 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx: Context = click.get_current_context().find_object(Context)

        async def main() -> T:
            store = ctx.store()
            try:
                await store.check_schema()
                return await fn(store, *args, **kwargs)
            finally:
                await store.close()

        try:
            return asyncio.run(main())
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group()
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.option("--database", "database", help="Database URL (overrides the config).")
@click.pass_context
def main(ctx: click.Context, config: str | None, database: str | None) -> None:
    """nntpd: an NNTP server for product-support communities."""
    ctx.obj = Context(config, database)


@main.command()
@click.option("--sample/--no-sample", default=True, show_default=True,
              help=f"Create the sample group {SAMPLE_GROUP} if missing.")
@click.pass_obj
def init(ctx: Context, sample: bool) -> None:
    """Create or upgrade the database (idempotent)."""

    async def run() -> None:
        store = ctx.store()
        try:
            created = await store.init_schema()
            if sample and await store.group(SAMPLE_GROUP) is None:
                await store.create_group(SAMPLE_GROUP, description="A group to try reading and posting",
                                         creator="nntpd init")
        finally:
            await store.close()
        click.echo(f"{'Created' if created else 'Upgraded'} database {ctx.settings.database.url}")

    asyncio.run(run())


@main.command()
@click.option("--host", help="Address to listen on (default from config, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default from config, 1119).")
@click.pass_obj
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Run the server until interrupted."""
    from nntpd.server import NNTPServer

    settings = ctx.settings
    logging.basicConfig(level=settings.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        store = ctx.store()
        await store.check_schema()
        server = NNTPServer(settings, store)
        await server.start(host, port)
        for sock in server.sockets:
            name = sock.getsockname()
            click.echo(f"nntpd listening on {name[0]}:{name[1]}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()
            await store.close()

    try:
        asyncio.run(run())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from None


# -- groups ---------------------------------------------------------------

@main.group()
def group() -> None:
    """Create, list, change and remove newsgroups."""


def _check_name(name: str) -> None:
    if not is_valid_group_name(name):
        raise click.ClickException(
            f"invalid group name {name!r}: use dot-separated parts of letters, digits, + - _ "
            "(RFC 5536 section 3.1.4)"
        )


def _status(moderated: bool, read_only: bool, posting: bool = False) -> str | None:
    if sum((moderated, read_only, posting)) > 1:
        raise click.UsageError("choose one of --moderated, --read-only, --posting")
    return "m" if moderated else "n" if read_only else "y" if posting else None


@group.command("create")
@click.argument("name")
@click.option("--description", default="", help="One line shown by LIST NEWSGROUPS.")
@click.option("--moderated", is_flag=True, help="Posts are held for approval (nntpd queue).")
@click.option("--read-only", is_flag=True, help="Nobody can post.")
@run_with_store
async def group_create(store: Store, name: str, description: str, moderated: bool, read_only: bool) -> None:
    """Create a newsgroup."""
    _check_name(name)
    status = _status(moderated, read_only) or "y"
    g = await store.create_group(name, description=description, status=status, creator="cli")
    click.echo(f"created {g.name} ({g.status})")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_with_store
async def group_list(store: Store, as_json: bool) -> None:
    """List newsgroups with their water marks."""
    groups = await store.groups()
    if as_json:
        click.echo(json.dumps([
            {"name": g.name, "status": g.status, "description": g.description, "low": g.low,
             "high": g.high, "count": g.count, "created": g.created_at.isoformat(),
             "creator": g.creator} for g in groups], indent=2))
        return
    width = max([len(g.name) for g in groups] + [5])
    click.echo(f"{'GROUP':<{width}}  STATUS  {'COUNT':>8}  {'LOW':>8}  {'HIGH':>8}  DESCRIPTION")
    for g in groups:
        click.echo(f"{g.name:<{width}}  {g.status:^6}  {g.count:>8}  {g.low:>8}  {g.high:>8}  {g.description}")


@group.command("remove")
@click.argument("name")
@run_with_store
async def group_remove(store: Store, name: str) -> None:
    """Remove a newsgroup and the articles only it holds."""
    await store.remove_group(name)
    click.echo(f"removed {name}")


@group.command("set")
@click.argument("name")
@click.option("--description", help="New description.")
@click.option("--moderated", is_flag=True, help="Hold posts for approval.")
@click.option("--read-only", is_flag=True, help="Refuse posts.")
@click.option("--posting", is_flag=True, help="Allow posting (status y).")
@run_with_store
async def group_set(store: Store, name: str, description: str | None, moderated: bool,
                    read_only: bool, posting: bool) -> None:
    """Change a newsgroup's description or status."""
    status = _status(moderated, read_only, posting)
    if description is None and status is None:
        raise click.UsageError("nothing to change: give --description or a status flag")
    g = await store.update_group(name, description=description, status=status)
    click.echo(f"{g.name} ({g.status}) {g.description}")


# -- moderation queue ----------------------------------------------------

@main.group()
def queue() -> None:
    """Posts held for moderated groups."""


@queue.command("list")
@click.option("--json", "as_json", is_flag=True)
@run_with_store
async def queue_list(store: Store, as_json: bool) -> None:
    """List held posts."""
    held = await store.held()
    if as_json:
        click.echo(json.dumps([
            {"id": h.id, "message_id": h.message_id, "newsgroups": h.newsgroups,
             "subject": h.subject, "from": h.from_, "received": h.received_at.isoformat()}
            for h in held], indent=2))
        return
    for h in held:
        click.echo(f"{h.id}\t{h.received_at:%Y-%m-%d %H:%M}\t{h.newsgroups}\t{h.from_}\t{h.subject}")


@queue.command("approve")
@click.argument("held_id", type=int, metavar="ID")
@run_with_store
async def queue_approve(store: Store, held_id: int) -> None:
    """Publish a held post."""
    from storage import PostRejected

    try:
        outcome = await store.approve(held_id)
    except PostRejected as exc:
        raise click.ClickException(str(exc)) from None
    numbers = " ".join(f"{g}:{n}" for g, n in outcome.numbers.items())
    click.echo(f"approved {outcome.message_id} -> {numbers}")


@queue.command("reject")
@click.argument("held_id", type=int, metavar="ID")
@run_with_store
async def queue_reject(store: Store, held_id: int) -> None:
    """Drop a held post."""
    await store.reject(held_id)
    click.echo(f"rejected {held_id}")


# -- accounts ------------------------------------------------------------

@main.group()
def user() -> None:
    """Accounts, passwords and the staff/MVP flags."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("password too short: use at least 8 characters")
    return password


def _account_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except AccountError as exc:
            raise StoreError(str(exc)) from None

    return wrapper


@user.command("add")
@click.argument("name")
@click.option("--email", required=True, help="The account's address (From or Sender of its posts).")
@click.option("--display-name", default="", help="Name shown in the Sender header.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@run_with_store
@_account_errors
async def user_add(store: Store, name: str, email: str, display_name: str, password_stdin: bool) -> None:
    """Create an account (role: member)."""
    if not ACCOUNT_NAME.fullmatch(name):
        raise click.ClickException(f"invalid user name {name!r}: use letters, digits, . _ - (max 64)")
    if "@" not in email or any(c.isspace() for c in email):
        raise click.ClickException(f"invalid email address {email!r}")
    password = _read_password(password_stdin)
    account = await store.add_account(name, email=email, display_name=display_name,
                                      password_hash=await asyncio.to_thread(hash_password, password))
    click.echo(f"added {account.name} <{account.email}> ({account.role})")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@run_with_store
@_account_errors
async def user_passwd(store: Store, name: str, password_stdin: bool) -> None:
    """Set an account's password."""
    if await store.account(name) is None:
        raise AccountError(f"no such user: {name}")
    password = _read_password(password_stdin)
    await store.set_password_hash(name, await asyncio.to_thread(hash_password, password))
    click.echo(f"password changed for {name}")


@user.command("flag")
@click.argument("name")
@click.option("--staff", "role", flag_value="staff", help="Flag as staff.")
@click.option("--mvp", "role", flag_value="mvp", help="Flag as MVP.")
@click.option("--member", "role", flag_value="member", help="Back to an ordinary member.")
@click.option("--by", "changed_by", default=None, help="Who makes the change (default: your login name).")
@run_with_store
@_account_errors
async def user_flag(store: Store, name: str, role: str | None, changed_by: str | None) -> None:
    """Set the role: --staff, --mvp or --member. Applies to the next post, no restart needed."""
    if role is None:
        raise click.UsageError("give one of --staff, --mvp, --member")
    account = await store.set_role(name, role, changed_by=changed_by or _operator())
    click.echo(f"{account.name} is now {account.role}")


@user.command("disable")
@click.argument("name")
@run_with_store
@_account_errors
async def user_disable(store: Store, name: str) -> None:
    """Refuse logins and posts from an account."""
    await store.set_disabled(name, True)
    click.echo(f"disabled {name}")


@user.command("enable")
@click.argument("name")
@run_with_store
@_account_errors
async def user_enable(store: Store, name: str) -> None:
    """Allow a disabled account again."""
    await store.set_disabled(name, False)
    click.echo(f"enabled {name}")


@user.command("list")
@click.option("--role", type=click.Choice(["staff", "mvp", "member"]), help="Only this role.")
@click.option("--json", "as_json", is_flag=True)
@run_with_store
async def user_list(store: Store, role: str | None, as_json: bool) -> None:
    """List accounts with their roles."""
    accounts = await store.accounts(role)
    if as_json:
        click.echo(json.dumps([
            {"name": a.name, "email": a.email, "display_name": a.display_name, "role": a.role,
             "disabled": a.disabled, "created": a.created_at.isoformat()} for a in accounts], indent=2))
        return
    for a in accounts:
        flag = " (disabled)" if a.disabled else ""
        click.echo(f"{a.name}\t{a.role}\t{a.email}\t{a.display_name}{flag}")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


if __name__ == "__main__":
    sys.exit(main())
