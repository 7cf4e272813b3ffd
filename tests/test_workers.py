"""`nntpd serve --workers N`: several processes on one port and one SQLite database.

The real CLI is started as a subprocess (as an operator would run it); clients
post from many connections at once and article numbers must stay strictly
increasing and gap-free per group (RFC 3977 6: numbers are never reused), with
both processes answering.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from conftest import Client, free_port
from nntp_helpers import until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork and SO_REUSEPORT")


def nntpd(*args: str, db: Path, config: Path | None = None) -> list[str]:
    options = ["--config", str(config)] if config else []
    return [sys.executable, "-c", "from cli import main; main()", *options,
            "--database", f"sqlite+aiosqlite:///{db}", *args]


async def connect(port: int) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = Client(reader, writer)
    client.greeting = await client.line()
    return client


async def connect_when_up(port: int) -> Client:
    """The first connection to a server that is starting (fails the test after ~5 s)."""
    for _ in range(100):
        try:
            return await connect(port)
        except OSError:
            await asyncio.sleep(0.05)
    pytest.fail("server did not start")


class Served:
    """`nntpd serve` running as a subprocess; ``err`` is its stderr once it has stopped."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.err = b""

    def children(self) -> set[int]:
        return {int(line) for line in subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()}


@asynccontextmanager
async def served(tmp_path: Path, *serve_args: str, config: Path | None = None,
                 groups: tuple[str, ...] = (), users: tuple[str, ...] = ()) -> AsyncIterator[Served]:
    """init, create ``groups`` and ``users`` (password PASSWORD), then serve until the block
    ends (SIGTERM; exit status 0 checked)."""
    db = tmp_path / "news.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(nntpd("init", db=db), check=True, cwd=tmp_path, env=env, capture_output=True)
    for group in groups:
        subprocess.run(nntpd("group", "create", group, db=db), check=True, cwd=tmp_path,
                       env=env, capture_output=True)
    for user in users:
        subprocess.run(nntpd("user", "add", user, "--email", f"{user}@example.com",
                             "--password-stdin", db=db),
                       check=True, cwd=tmp_path, env=env, capture_output=True, input=PASSWORD.encode())
    port = free_port()
    proc = subprocess.Popen(nntpd("serve", "--port", str(port), *serve_args, db=db, config=config),
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    handle = Served(proc, port)
    try:
        probe = await connect_when_up(port)
        await probe.close()
        yield handle
    finally:
        proc.send_signal(signal.SIGTERM)
        _, handle.err = proc.communicate(timeout=10)
    assert proc.returncode == 0, handle.err.decode()


@pytest.mark.parametrize("writer_process", [True, False])
async def test_two_workers_share_port_and_number_articles_without_gaps(tmp_path, writer_process):
    """With the writer process, both workers hand it their posts; without, they take turns."""
    config = tmp_path / "nntpd.toml"
    config.write_text(f"[server]\nwriter_process = {str(writer_process).lower()}\n")
    async with served(tmp_path, "--workers", "2", config=config, groups=("local.other",)) as server:
        children = server.children()
        assert len(children) == 1 + writer_process, "one forked worker besides the parent (+ writer)"

        async def poster(n: int) -> list[str]:
            client = await connect(server.port)
            try:
                out = []
                for k in range(5):
                    groups = "local.test,local.other" if k % 2 else "local.test"
                    out.append(await client.post(
                        f"From: p{n}@example.com\nNewsgroups: {groups}\nSubject: s {n} {k}\n"
                        f"Message-ID: <w{n}.{k}@example.com>\n\nbody\n"))
                return out
            finally:
                await client.close()

        statuses = [s for batch in await asyncio.gather(*(poster(n) for n in range(20))) for s in batch]
        assert all(s.startswith("240") for s in statuses), statuses
        client = await connect(server.port)
        try:
            for group, expected in (("local.test", 100), ("local.other", 40)):
                assert (await client.cmd(f"LISTGROUP {group}")).startswith(f"211 {expected} 1 {expected}")
                assert await client.block() == [str(n) for n in range(1, expected + 1)]
        finally:
            await client.close()
    assert b"2 workers" in server.err
    announced = [line for line in server.err.decode().splitlines()
                 if line.startswith("nntpd writer process ")]
    if writer_process:
        assert len(announced) == 1 and int(announced[0].split()[-1]) in children
    else:
        assert not announced


async def test_serve_goes_on_posting_when_its_writer_process_is_killed(tmp_path):
    """With workers, `nntpd serve` on SQLite forks a writer process; if it dies, they commit posts themselves."""
    async with served(tmp_path, "--workers", "2") as server:
        client = await connect(server.port)
        try:
            article = "From: a@example.com\nNewsgroups: local.test\nSubject: s\nMessage-ID: <k{}@example.com>\n\nb\n"
            assert (await client.post(article.format(1))).startswith("240")
            announced = server.proc.stderr.readline()  # type: ignore[union-attr]
            while not announced.startswith(b"nntpd writer process "):
                announced = server.proc.stderr.readline()  # type: ignore[union-attr]
            os.kill(int(announced.split()[-1]), signal.SIGKILL)
            seen: list[bytes] = []  # serve's stderr read while waiting (server.err has the rest)

            def both_workers_noticed() -> None:  # each worker notices on its own link and says so
                while sum(b"writer process gone" in line for line in seen) < 2:
                    line = server.proc.stderr.readline()  # type: ignore[union-attr]
                    assert line, "serve's stderr closed before both workers noticed"
                    seen.append(line)

            await asyncio.wait_for(asyncio.to_thread(both_workers_noticed), 10)

            async def post_once(n: int) -> str:
                other = await connect(server.port)
                try:
                    return await other.post(article.format(n))
                finally:
                    await other.close()

            statuses = await asyncio.gather(*(post_once(n) for n in range(2, 10)))
            assert all(s.startswith("240") for s in statuses), statuses
            assert (await client.cmd("GROUP local.test")).startswith("211 9 1 9")
        finally:
            await client.close()
    # Both workers had their link open and saw the writer go, before any post needed it.
    err = b"".join(seen) + server.err
    assert err.count(b"writer process gone (0 posts in flight)") == 2, err.decode()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_fails_cleanly(tmp_path, workers):
    """A port already taken: exit status 1, one clear line, no process left, no false alarm."""
    db = tmp_path / "news.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(nntpd("init", db=db), check=True, cwd=tmp_path, env=env, capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(nntpd("serve", "--port", str(port), "--workers", workers, db=db),
                              cwd=tmp_path, env=env, capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert b"Error: cannot listen" in proc.stderr
    assert b"writer process gone" not in proc.stderr, proc.stderr.decode()


# -- limits count for the whole server, not per worker -----------------------------------------
# With two workers the kernel spreads connections over both; were the counts per process,
# each test below would let a client through on the worker that had not seen it yet.


async def _login(port: int, password: str = PASSWORD) -> tuple[Client, str]:
    client = await connect(port)
    assert (await client.cmd("AUTHINFO USER alice")).startswith("381")
    return client, await client.cmd(f"AUTHINFO PASS {password}")


async def test_account_lockout_counts_failures_on_every_worker(tmp_path):
    """RFC 4643 2.3 lets a server refuse logins (481); lockout_failures is for the whole server."""
    config = tmp_path / "nntpd.toml"
    config.write_text("[auth]\nfailure_delay = 0.0\nlockout_failures = 6\nlockout_seconds = 60\n")
    async with served(tmp_path, "--workers", "2", config=config, users=("alice",)) as server:
        for _ in range(6):  # one failure per connection: they land on both workers
            client, status = await _login(server.port, "wrong-password")
            assert status.startswith("481"), status
            await client.close()
        for _ in range(6):
            client, status = await _login(server.port)
            assert status.startswith("481"), "alice is locked on every worker"
            await client.close()


async def test_post_rate_limit_counts_posts_on_every_worker(tmp_path):
    config = tmp_path / "nntpd.toml"
    config.write_text("[server]\nposts_per_minute = 2\n")
    async with served(tmp_path, "--workers", "2", config=config, users=("alice",)) as server:
        statuses = []
        for n in range(6):
            client, status = await _login(server.port)
            assert status.startswith("281"), status
            statuses.append(await client.post(
                f"From: alice@example.com\nNewsgroups: local.test\nSubject: s\n"
                f"Message-ID: <rate{n}@example.com>\n\nb\n"))
            await client.close()
        assert [s[:3] for s in statuses] == ["240", "240"] + ["441"] * 4, statuses
        assert all("rate limit" in s for s in statuses[2:]), statuses


async def _admitted(port: int, count: int, also=lambda: True) -> list[Client]:
    """``count`` connections that were all greeted 200 (and pass ``also``); retried while the
    server still counts connections that just closed (each close is seen a moment later)."""
    for _ in range(50):
        clients = [await connect(port) for _ in range(count)]
        await asyncio.sleep(0.05)
        if all(c.greeting.startswith("200") for c in clients) and also():
            return clients
        for client in clients:
            await client.close()
        await asyncio.sleep(0.05)
    pytest.fail(f"never had {count} connections admitted as the test needs")


async def test_connections_per_address_count_on_every_worker(tmp_path):
    """RFC 3977 5.1.1: a server that cannot serve a client answers 400 and closes."""
    config = tmp_path / "nntpd.toml"
    config.write_text("[server]\nmax_connections_per_address = 4\n")
    async with served(tmp_path, "--workers", "2", config=config) as server:
        clients = await _admitted(server.port, 4)
        extra = [await connect(server.port) for _ in range(4)]
        assert all(c.greeting.startswith("400") for c in extra), [c.greeting for c in extra]
        for client in extra:
            await client.close()
        for client in clients:
            assert (await client.cmd("DATE")).startswith("111")
        await clients[0].close()
        for _ in range(50):  # its place is free once the server has seen it close
            again = await connect(server.port)
            await again.close()
            if again.greeting.startswith("200"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("a closed connection's place was never freed")
        for client in clients[1:]:
            await client.close()


def _sockets(pid: int) -> int:
    """Open sockets of a process (its listening socket, links, client connections)."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


async def test_a_worker_that_dies_is_logged_and_its_connections_no_longer_count(tmp_path):
    """A killed worker is not replaced, but the parent says so and frees the places its
    connections held; the remaining worker takes every new connection."""
    config = tmp_path / "nntpd.toml"
    config.write_text("[server]\nmax_connections_per_address = 8\nwriter_process = false\n")
    async with served(tmp_path, "--workers", "2", config=config) as server:
        (child,) = server.children()
        await asyncio.sleep(0.2)  # the start-up probe's connection is closed and uncounted
        before = _sockets(child)
        # eight connections, some of them (not all) on the child
        clients = await _admitted(server.port, 8, lambda: before < _sockets(child) < before + 8)
        os.kill(child, signal.SIGKILL)
        # the parent has reaped it (and so freed its connections' places)
        assert await until(lambda: not Path(f"/proc/{child}").exists())
        closed = 0
        for client in clients:
            try:
                closed += not (await client.cmd("DATE")).startswith("111")
            except (ConnectionError, OSError):
                closed += 1
        assert 0 < closed < 8
        new = [await connect(server.port) for _ in range(closed + 1)]
        greetings = [c.greeting[:3] for c in new]
        assert greetings == ["200"] * closed + ["400"], greetings
        for client in clients + new:
            await client.close()
    err = server.err.decode()
    assert f"worker 1 (pid {child}) was killed by signal 9" in err, err
