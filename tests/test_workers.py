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
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Client, free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork and SO_REUSEPORT")


def nntpd(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-c", "from cli import main; main()",
            "--database", f"sqlite+aiosqlite:///{db}", *args]


async def connect(port: int) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = Client(reader, writer)
    client.greeting = await client.line()
    return client


async def test_two_workers_share_port_and_number_articles_without_gaps(tmp_path):
    db = tmp_path / "news.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(nntpd("init", db=db), check=True, cwd=tmp_path, env=env, capture_output=True)
    subprocess.run(nntpd("group", "create", "local.other", db=db), check=True, cwd=tmp_path,
                   env=env, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(nntpd("serve", "--port", str(port), "--workers", "2", db=db),
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                probe = await connect(port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("server did not start")
        await probe.close()
        workers = {int(line) for line in subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()}
        assert len(workers) == 1, "one forked worker besides the parent"

        async def poster(n: int) -> list[str]:
            client = await connect(port)
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
        client = await connect(port)
        try:
            for group, expected in (("local.test", 100), ("local.other", 40)):
                assert (await client.cmd(f"LISTGROUP {group}")).startswith(f"211 {expected} 1 {expected}")
                assert await client.block() == [str(n) for n in range(1, expected + 1)]
        finally:
            await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert b"2 workers" in err
