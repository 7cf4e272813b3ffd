"""The operator's command line: parses options and calls the same Store the server uses."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import click

from nntpd.article import is_valid_group_name
from nntpd.config import ConfigError, Settings, load_settings
from storage import Store, StoreError

T = TypeVar("T")

SAMPLE_GROUP = "local.test"


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


if __name__ == "__main__":
    sys.exit(main())
