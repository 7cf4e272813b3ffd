"""Small helpers shared by the integration tests (not fixtures: see conftest.py)."""

from __future__ import annotations

import asyncio
import itertools

from conftest import Client

_counter = itertools.count(1)

CRLF = b"\r\n"


def unique_id(tag: str = "t") -> str:
    return f"<{tag}.{next(_counter)}@test.example.org>"


def make_article(
    *,
    newsgroups: str | None = "local.test",
    subject: str | None = "Test subject",
    from_: str | None = "Ann <ann@example.com>",
    message_id: str | None = None,
    extra: tuple[str | bytes, ...] = (),
    body: bytes | str = b"Hello\r\n",
) -> bytes:
    """An article with CRLF line ends; None leaves a header out."""
    lines: list[bytes] = []
    if from_ is not None:
        lines.append(b"From: " + from_.encode())
    if newsgroups is not None:
        lines.append(b"Newsgroups: " + newsgroups.encode())
    if subject is not None:
        lines.append(b"Subject: " + subject.encode())
    if message_id is not None:
        lines.append(b"Message-ID: " + message_id.encode())
    for ln in extra:
        lines.append(ln.encode() if isinstance(ln, str) else ln)
    if isinstance(body, str):
        body = body.encode()
    return b"".join(ln + CRLF for ln in lines) + CRLF + body


async def post_ok(client: Client, **kwargs: object) -> str:
    """POST an article (make_article arguments); assert 240; return its Message-ID."""
    if kwargs.get("message_id") is None:
        kwargs["message_id"] = unique_id()
    status = await client.post(make_article(**kwargs))  # type: ignore[arg-type]
    assert status.startswith("240"), status
    return kwargs["message_id"]  # type: ignore[return-value]


def parse_211(line: str) -> tuple[int, int, int, str]:
    """'211 count low high name [...]' -> (count, low, high, name)."""
    parts = line.split()
    assert parts[0] == "211", line
    return int(parts[1]), int(parts[2]), int(parts[3]), parts[4]


async def group_info(client: Client, name: str) -> tuple[int, int, int, str]:
    return parse_211(await client.cmd(f"GROUP {name}"))


async def listgroup(client: Client, name: str) -> list[int]:
    status = await client.cmd(f"LISTGROUP {name}")
    assert status.startswith("211"), status
    return [int(n) for n in await client.block()]


def unstuff(raw: bytes) -> bytes:
    """A raw_block() result (dot-stuffed CRLF lines) -> the unstuffed bytes."""
    return b"".join(
        (ln[1:] if ln.startswith(b".") else ln) + CRLF for ln in raw.split(CRLF)[:-1]
    )


async def until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll a cheap synchronous predicate until it holds (or the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def run_cli(url: str, *args: str, input: str | None = None, ok: bool = True) -> str:
    """Run `nntpd --database URL ARGS` (its own event loop and Store, in a thread); its output."""
    from click.testing import CliRunner

    from cli import main as cli_main

    result = await asyncio.to_thread(CliRunner().invoke, cli_main, ["--database", url, *args], input=input)
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    else:
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), (args, result.output)
        assert "Traceback" not in result.output
    return result.output
