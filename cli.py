"""The operator's command line: parses options and calls the same Store the server uses."""

from __future__ import annotations

import asyncio
import csv
import gc
import getpass
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError, NoSuchModuleError

from nntpd import __version__
from nntpd.article import is_valid_group_name
from nntpd.config import ConfigError, Settings, load_settings
from nntpd.passwords import hash_password
from storage import AccountError, Store, StoreError
from storage.accounts import CONTROL
from storage.engine import is_sqlite, is_sqlite_file
from storage.writer_link import WriterLink

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

    def store(self, *, create: bool = False) -> Store:
        """A Store on the configured database, or StoreError with one line saying why it cannot be.

        Only ``init`` passes create=True: every other command refuses a SQLite file that does
        not exist before SQLite (and the write lock beside it) would create an empty one.
        """
        url = self.settings.database.url
        parsed = _parse_url(url)
        _check_driver(url, parsed)
        _check_sqlite_file(url, parsed, create)
        try:
            return Store(url, path_host=self.settings.server.path_host)
        except (ArgumentError, InvalidRequestError, ImportError, ValueError, OSError) as exc:
            raise StoreError(f"cannot open database {_shown(url)}: {_reason(exc)}") from None


# -- the database URL: every way it can be unusable is one line (issue 14) -----------

URL_EXAMPLES = "e.g. sqlite:///nntpd.sqlite3 or postgresql+asyncpg://user:pass@host/db"
DRIVER_HINTS = {"asyncpg": "install the postgres extra: pip install -e '.[postgres]'"}


def _shown(url: str) -> str:
    """The URL for messages, without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without the driver's class names and SQL."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"invalid database URL {url!r}: use DIALECT[+DRIVER]://..., {URL_EXAMPLES}") from None


def _check_driver(url: str, parsed: URL) -> None:
    """The URL's dialect is known and its driver is installed (the store opens engines with it)."""
    try:
        dialect = parsed.get_dialect()
        if not is_sqlite(url):  # reached through SQLAlchemy's async engine (storage/engine.py)
            dialect = dialect.get_async_dialect_cls(parsed)
    except NoSuchModuleError:
        raise StoreError(f"cannot use database {_shown(url)}: no database or driver named "
                         f"{parsed.drivername!r} ({URL_EXAMPLES})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = parsed.get_driver_name()
        hint = DRIVER_HINTS.get(driver, f"no Python module {exc.name or driver!r}")
        raise StoreError(f"cannot use database {_shown(url)}: its driver {driver} is not installed "
                         f"({hint})") from None


def _check_sqlite_file(url: str, parsed: URL, create: bool) -> None:
    """A SQLite file's folder exists (and is writable to create it); only init may create it."""
    database = parsed.database
    if not is_sqlite_file(url) or not database or database.startswith("file:"):
        return  # in memory, or a URI filename: SQLite says what is wrong
    path = Path(database)
    folder = path.parent
    problem = None
    if not folder.exists():
        problem = f"folder {folder} does not exist"
    elif not folder.is_dir():
        problem = f"{folder} is not a folder"
    elif path.is_dir():
        problem = f"{path} is a folder"
    elif not path.exists():
        if not create:
            raise StoreError(f"no database at {_shown(url)}: run 'nntpd init' first")
        if not os.access(folder, os.W_OK | os.X_OK):
            problem = f"folder {folder} is not writable"
    if problem:
        raise StoreError(f"cannot open database {_shown(url)}: {problem}")


async def _reach(store: Store, first: Awaitable[T]) -> T:
    """The first statement on a database: a server not reachable or a file not openable -> StoreError."""
    try:
        return await first
    except (OSError, DBAPIError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {_shown(store.url)}: {_reason(exc)}") from None


def run_database(ctx: Context, main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that uses the database; its failures become one line and exit 1.

    StoreError carries the operator's message (no database, a URL, driver or file that cannot
    be used, a group that exists...); a database error met later is shown by its first line.
    """
    try:
        return asyncio.run(main)
    except StoreError as exc:  # the store names the URL as given: hide its password here too
        url = ctx.settings.database.url
        raise click.ClickException(str(exc).replace(url, _shown(url))) from None
    except (DBAPIError, sqlite3.Error) as exc:
        raise click.ClickException(
            f"database error on {_shown(ctx.settings.database.url)}: {_reason(exc)}") from None


async def _checked_store(ctx: Context) -> Store:
    """A store on a database that ``nntpd init`` made; the caller closes it."""
    store = ctx.store()
    try:
        await _reach(store, store.check_schema())
    except BaseException:
        await store.close()
        raise
    return store


def one_line(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse control characters (TAB, CR, LF...) in a value the operator gives: names,
    addresses and descriptions end up in header lines and listings, where a CR or LF
    would start a forged line (issue 13: a display name split the Sender header)."""
    if value is not None and CONTROL.search(value):
        label = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        raise click.ClickException(f"{label} must not contain control characters: {value!r}")
    return value


def run_with_store(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command body with an opened, initialised store; StoreError -> one line, exit 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx: Context = click.get_current_context().find_object(Context)

        async def main() -> T:
            store = await _checked_store(ctx)
            try:
                return await fn(store, *args, **kwargs)
            finally:
                await store.close()

        return run_database(ctx, main())

    return wrapper


def exclusive(*names: str, required: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Refuse more than one of these flags (and, if required, none) with a usage error,
    before the command opens the database."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            given = [name for name in names if kwargs.get(name)]
            if len(given) > 1 or (required and not given):
                ctx = click.get_current_context()
                flags = {p.name: p.opts[0] for p in ctx.command.params}
                choices = ", ".join(flags[name] for name in names)
                raise click.UsageError(f"{'choose' if given else 'give'} one of {choices}", ctx)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


@click.group()
@click.version_option(__version__, "--version", prog_name="nntpd", message="%(prog)s %(version)s",
                      help="Show the version and exit.")
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
        store = ctx.store(create=True)
        try:
            created = await _reach(store, store.init_schema())
            if sample and await store.group(SAMPLE_GROUP) is None:
                await store.create_group(SAMPLE_GROUP, description="A group to try reading and posting",
                                         creator="nntpd init")
        finally:
            await store.close()
        click.echo(f"{'Created' if created else 'Upgraded'} database {ctx.settings.database.url}")

    run_database(ctx, run())


@main.command()
@click.option("--host", help="Address to listen on (default from config, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on (default from config, 1119; 0: any free port).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes sharing the port (default from config, 1).")
@click.pass_obj
def serve(ctx: Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the server until interrupted.

    With several workers, each is a process with its own event loop on the
    same port (SO_REUSEPORT: the kernel spreads connections) and the same
    database: one Python process uses one core, the workers use them all.
    On SQLite they hand their posts to one writer process (writer_process).
    """
    from nntpd.processes import (
        fork_workers,
        fork_writer,
        signal_processes,
        stop_processes,
        watch_workers,
    )
    from nntpd.server import NNTPServer

    settings = ctx.settings
    workers = workers or settings.server.workers
    logging.basicConfig(level=settings.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def check() -> None:
        await (await _checked_store(ctx)).close()

    async def run(index: int, link: socket.socket | None) -> None:
        announce = index == 0  # the parent: it announces and watches the other workers
        if guards is not None:
            guards.for_worker(index)
        store = ctx.store()
        server = NNTPServer(settings, store, guards)
        try:
            if link is not None:
                await store.use_writer_process(WriterLink(link))
            await server.start(host, port, reuse_port=workers > 1)
            # Objects alive after start-up (modules, statements, settings) live for good:
            # keep them out of later full collections, which otherwise pause every client.
            gc.freeze()
            if announce:
                for sock in server.sockets:
                    name = sock.getsockname()
                    click.echo(f"nntpd listening on {name[0]}:{name[1]}"
                               f"{f' ({workers} workers)' if workers > 1 else ''}", err=True)
                if link is not None:
                    click.echo(f"nntpd writer process {writer}", err=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if announce and guards is not None:  # several workers: watch the forked ones
                watch_workers(children, guards.worker_gone)
            await stop.wait()
            if announce:  # the workers close their connections while this one does
                signal_processes(children)
        finally:
            await server.close()
            await store.close()

    run_database(ctx, check())
    try:
        guards = None
        if workers > 1:  # limits count for the whole server: the workers share these counts
            from nntpd.shared_guards import shared_guards
            guards = shared_guards(settings, workers)
        writer = 0
        links: list[socket.socket | None] = [None] * workers
        if workers > 1 and settings.server.writer_process and is_sqlite_file(settings.database.url):
            writer, server_ends = fork_writer(settings.database.url, settings.server.path_host, workers)
            links = list(server_ends)
        children = fork_workers(workers - 1, lambda i: asyncio.run(run(i, links[i])), links)
        try:
            asyncio.run(run(0, links[0]))
        finally:
            stop_processes(children)
            if writer:  # last: it answers what the server processes sent before they stopped
                stop_processes([writer])
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
    """The status the flags ask for (@exclusive refuses more than one)."""
    return "m" if moderated else "n" if read_only else "y" if posting else None


@group.command("create")
@click.argument("name", callback=one_line)
@click.option("--description", default="", callback=one_line, help="One line shown by LIST NEWSGROUPS.")
@click.option("--moderated", is_flag=True, help="Posts are held for approval (nntpd queue).")
@click.option("--read-only", is_flag=True, help="Nobody can post.")
@exclusive("moderated", "read_only")
@run_with_store
async def group_create(store: Store, name: str, description: str, moderated: bool, read_only: bool) -> None:
    """Create a newsgroup."""
    _check_name(name)
    status = _status(moderated, read_only) or "y"
    g = await store.create_group(name, description=description, status=status, creator="cli")
    click.echo(f"created {g.name} ({g.status})")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts: one object per group.")
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
@click.argument("name", callback=one_line)
@run_with_store
async def group_remove(store: Store, name: str) -> None:
    """Remove a newsgroup and the articles only it holds."""
    await store.remove_group(name)
    click.echo(f"removed {name}")


@group.command("set")
@click.argument("name", callback=one_line)
@click.option("--description", callback=one_line, help="New description.")
@click.option("--moderated", is_flag=True, help="Hold posts for approval.")
@click.option("--read-only", is_flag=True, help="Refuse posts.")
@click.option("--posting", is_flag=True, help="Allow posting (status y).")
@exclusive("moderated", "read_only", "posting")
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
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts: one object per held post.")
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
@click.argument("name", callback=one_line)
@click.option("--email", required=True, callback=one_line,
              help="The account's address (From or Sender of its posts).")
@click.option("--display-name", default="", callback=one_line, help="Name shown in the Sender header.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@run_with_store
@_account_errors
async def user_add(store: Store, name: str, email: str, display_name: str, password_stdin: bool) -> None:
    """Create an account (role: member)."""
    if not ACCOUNT_NAME.fullmatch(name):
        raise click.ClickException(f"invalid user name {name!r}: use letters, digits, . _ - (max 64)")
    if "@" not in email or any(c.isspace() for c in email) or not email.isascii() or len(email) > 255:
        raise click.ClickException(f"invalid email address {email!r}")
    if len(display_name) > 255:
        raise click.ClickException("display name too long (max 255 characters)")
    password = _read_password(password_stdin)
    account = await store.add_account(name, email=email, display_name=display_name,
                                      password_hash=await asyncio.to_thread(hash_password, password))
    click.echo(f"added {account.name} <{account.email}> ({account.role})")


@user.command("passwd")
@click.argument("name", callback=one_line)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@run_with_store
@_account_errors
async def user_passwd(store: Store, name: str, password_stdin: bool) -> None:
    """Set an account's password."""
    if await store.account(name) is None:
        raise AccountError(f"no such user: {name!r}")
    password = _read_password(password_stdin)
    await store.set_password_hash(name, await asyncio.to_thread(hash_password, password))
    click.echo(f"password changed for {name}")


@user.command("flag")
@click.argument("name", callback=one_line)
@click.option("--staff", is_flag=True, help="Flag as staff.")
@click.option("--mvp", is_flag=True, help="Flag as MVP.")
@click.option("--member", is_flag=True, help="Back to an ordinary member.")
@click.option("--by", "changed_by", default=None, callback=one_line,
              help="Who makes the change (default: your login name).")
@exclusive("staff", "mvp", "member", required=True)
@run_with_store
@_account_errors
async def user_flag(store: Store, name: str, staff: bool, mvp: bool, member: bool,
                    changed_by: str | None) -> None:
    """Set the role: --staff, --mvp or --member. Applies to the next post, no restart needed."""
    role = "staff" if staff else "mvp" if mvp else "member"
    account = await store.set_role(name, role, changed_by=changed_by or _operator())
    click.echo(f"{account.name} is now {account.role}")


@user.command("disable")
@click.argument("name", callback=one_line)
@run_with_store
@_account_errors
async def user_disable(store: Store, name: str) -> None:
    """Refuse logins and posts from an account."""
    await store.set_disabled(name, True)
    click.echo(f"disabled {name}")


@user.command("enable")
@click.argument("name", callback=one_line)
@run_with_store
@_account_errors
async def user_enable(store: Store, name: str) -> None:
    """Allow a disabled account again."""
    await store.set_disabled(name, False)
    click.echo(f"enabled {name}")


@user.command("list")
@click.option("--role", type=click.Choice(["staff", "mvp", "member"]), help="Only this role.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts: one object per account.")
@run_with_store
async def user_list(store: Store, role: str | None, as_json: bool) -> None:
    """List accounts with their roles."""
    accounts = await store.accounts(role)
    if as_json:
        click.echo(json.dumps([
            {"name": a.name, "email": a.email, "display_name": a.display_name, "role": a.role,
             "disabled": a.disabled, "created": a.created_at.isoformat()} for a in accounts], indent=2))
        return
    click.echo("NAME\tROLE\tEMAIL\tDISPLAY NAME")
    for a in accounts:
        flag = " (disabled)" if a.disabled else ""
        click.echo(f"{a.name}\t{a.role}\t{a.email}\t{a.display_name}{flag}")


# -- support threads and the community report ----------------------------

DURATION = re.compile(r"(\d+)([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90m', '2h', '30d', '1w2d' -> timedelta."""
    parts = DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise click.BadParameter(f"{text!r}: use a number with s, m, h, d or w (e.g. 2h, 30d)")
    return timedelta(seconds=sum(int(n) * UNIT_SECONDS[u] for n, u in parts))


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def _wildmat_or_none(pattern: str | None) -> Callable[[str], bool] | None:
    from nntpd.wildmat import WildmatError, compile_wildmat

    if pattern is None:
        return None
    try:
        return compile_wildmat(pattern)
    except WildmatError as exc:
        raise click.BadParameter(str(exc)) from None


@main.group()
def threads() -> None:
    """Find unanswered threads, show a thread, resolve or reopen it."""


@threads.command("unanswered")
@click.option("--group", "group_pattern", metavar="WILDMAT", help="Only groups matching (e.g. 'support.*,!support.test').")
@click.option("--older-than", "older_than", metavar="DURATION", help="Only threads started at least this long ago (e.g. 2h).")
@click.option("--awaiting-staff", is_flag=True, help="Threads no staff or MVP account has posted in.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N threads.")
@click.option("--sort", type=click.Choice(["busiest", "age"]), default="busiest", show_default=True,
              help="busiest: oldest first within the busiest groups first; age: oldest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts: one object per thread.")
@run_with_store
async def threads_unanswered(store: Store, group_pattern: str | None, older_than: str | None,
                             awaiting_staff: bool, limit: int | None, sort: str, as_json: bool) -> None:
    """Threads nobody but the original poster has answered (or no staff/MVP has)."""
    now = datetime.now(timezone.utc)
    cutoff = now - parse_duration(older_than) if older_than else None
    found = await store.open_threads(
        kind="awaiting-staff" if awaiting_staff else "unanswered",
        group_match=_wildmat_or_none(group_pattern), older_than=cutoff, limit=limit, sort=sort,
        activity_since=now - timedelta(days=30),
    )
    if as_json:
        click.echo(json.dumps([
            {"message_id": t.key, "group": t.group, "subject": t.subject, "author": t.author,
             "started": t.started_at.isoformat(), "last_post": t.last_post_at.isoformat(),
             "age_seconds": int((now - t.started_at).total_seconds()), "posts": t.posts,
             "participants": t.participants} for t in found], indent=2))
        return
    if not found:
        click.echo("No open threads.")
        return
    gw = max(len("GROUP"), *(len(t.group) for t in found))
    aw = min(30, max(len("AUTHOR"), *(len(t.author) for t in found)))
    click.echo(f"{'GROUP':<{gw}}  {'AGE':>7}  {'POSTS':>5}  {'AUTHOR':<{aw}}  SUBJECT")
    for t in found:
        age = format_age((now - t.started_at).total_seconds())
        click.echo(f"{t.group:<{gw}}  {age:>7}  {t.posts:>5}  {t.author[:aw]:<{aw}}  {t.subject}  {t.key}")


async def _thread_key(store: Store, message_id: str) -> str:
    key = await store.thread_key_of(message_id)
    if key is None:
        raise StoreError(f"no article or thread {message_id}")
    return key


@threads.command("show")
@click.argument("message_id", metavar="MESSAGE-ID")
@run_with_store
async def threads_show(store: Store, message_id: str) -> None:
    """The thread containing MESSAGE-ID as a tree, with each poster's role."""
    key = await _thread_key(store, message_id)
    articles = await store.thread_articles(key)
    figures = await store.thread(key)
    ids = {a.message_id for a in articles}
    children: dict[str | None, list[Any]] = {}
    for a in articles:
        parent = next((ref for ref in reversed(a.references.split()) if ref in ids), None)
        children.setdefault(parent, []).append(a)
    if figures:
        state = "resolved" if figures["resolved_at"] else (
            "unanswered" if figures["first_reply_at"] is None else "answered")
        staff = "awaiting staff" if figures["first_staff_at"] is None else "staff/MVP replied"
        click.echo(f"Thread {key} in {figures['group_name']}: {figures['posts']} posts, "
                   f"{figures['participants']} participants, {state}, {staff}")
    if key not in ids:
        click.echo(f"(the first article {key} has not arrived)")

    def show(parent: str | None, depth: int) -> None:
        for a in children.get(parent, []):
            role = f" [{a.role}]" if a.role in ("staff", "mvp") else ""
            click.echo(f"{'  ' * depth}{a.arrived_at:%Y-%m-%d %H:%M}  {a.from_}{role}: {a.subject}  {a.message_id}")
            show(a.message_id, depth + 1)

    show(None, 0)


@threads.command("resolve")
@click.argument("message_id", metavar="MESSAGE-ID")
@run_with_store
async def threads_resolve(store: Store, message_id: str) -> None:
    """Mark the thread containing MESSAGE-ID resolved: it leaves the unanswered lists and views."""
    key = await _thread_key(store, message_id)
    await store.set_resolved(key, True)
    click.echo(f"resolved {key}")


@threads.command("reopen")
@click.argument("message_id", metavar="MESSAGE-ID")
@run_with_store
async def threads_reopen(store: Store, message_id: str) -> None:
    """Undo resolve."""
    key = await _thread_key(store, message_id)
    await store.set_resolved(key, False)
    click.echo(f"reopened {key}")


REPORT_COLUMNS = ("group", "articles", "threads", "answered_share", "staff_answered_share",
                  "reply_median_s", "reply_p90_s", "staff_reply_median_s", "staff_reply_p90_s",
                  "unanswered_now")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


@main.command()
@click.option("--since", default="30d", show_default=True, metavar="DURATION",
              help="Threads started and articles posted in this window.")
@click.option("--group", "group_pattern", metavar="WILDMAT", help="Only groups matching.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for spreadsheets (one row per group).")
@run_with_store
async def report(store: Store, since: str, group_pattern: str | None, as_json: bool, as_csv: bool) -> None:
    """Per group: articles, threads, share answered (by anyone, by staff/MVP), reply times, open threads."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    start = datetime.now(timezone.utc) - parse_duration(since)
    data = await store.report(since=start, group_match=_wildmat_or_none(group_pattern))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(REPORT_COLUMNS)
        for row in data["groups"]:
            out.writerow(["" if row[c] is None else row[c] for c in REPORT_COLUMNS])
        return
    click.echo(f"Community report since {start:%Y-%m-%d %H:%M} UTC")
    gw = max([len("GROUP")] + [len(r["group"]) for r in data["groups"]])
    click.echo(f"{'GROUP':<{gw}}  {'ARTICLES':>8}  {'THREADS':>7}  {'ANSWERED':>8}  {'BY STAFF':>8}  "
               f"{'REPLY p50':>9}  {'p90':>7}  {'STAFF p50':>9}  {'p90':>7}  {'OPEN':>5}")
    for r in data["groups"]:
        click.echo(
            f"{r['group']:<{gw}}  {r['articles']:>8}  {r['threads']:>7}  {_share(r['answered_share']):>8}  "
            f"{_share(r['staff_answered_share']):>8}  {format_age(r['reply_median_s']):>9}  "
            f"{format_age(r['reply_p90_s']):>7}  {format_age(r['staff_reply_median_s']):>9}  "
            f"{format_age(r['staff_reply_p90_s']):>7}  {r['unanswered_now']:>5}"
        )
    if data["top_answerers"]:
        click.echo("\nTop answerers")
        for a in data["top_answerers"]:
            click.echo(f"  {a['replies']:>5}  {a['author']} ({a['role']})")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


if __name__ == "__main__":
    sys.exit(main())
