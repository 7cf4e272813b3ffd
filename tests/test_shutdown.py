"""Shutdown works mid-command (issue 13): SIGTERM and SIGINT stop `nntpd serve` within 5 s.

The real CLI runs as a subprocess (as an operator runs it), alone and with
``--workers 2``. Before the signal, clients start a long command and leave
it running:

- ``xpat``: the backtracking XPAT of the issue over a group whose subjects
  are thousands of a's: a lot of matching work, whatever the matcher;
- ``over``: ``OVER 1-`` of a group whose overview is several MB, read for
  its first 64 KB and then not at all, so the server sits in flow control
  with most of the answer still to write.

Several such clients are opened, so with two workers both are very likely
busy. SIGTERM goes to the main process (``kill PID``, systemd's main
process); SIGINT goes to the whole process group, as Ctrl-C in a terminal
sends it. Every process of the server (workers and the writer process
included) must be gone within 5 s, and the main one must exit with 0, as
after any orderly stop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "bench"))  # after the project and tests: bench names shadow nothing

import stall  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="serve --workers needs fork")

STOP_WITHIN = 5.0  # seconds, from the signal to the last process gone
ARTICLES = 1500
SUBJECT_LENGTH = 6000  # ~9 MB of overview: far more than the socket buffers hold
CLIENTS = 4  # with two workers, all on one worker has a chance of 1 in 8
XPAT = f"XPAT Subject 1- {stall.XPAT_PATTERN}"
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database for every test here (each serves a copy): stall.scan with long subjects."""
    db = tmp_path_factory.mktemp("shutdown-db") / "news.sqlite3"
    asyncio.run(stall.populate(f"sqlite+aiosqlite:///{db}", articles=ARTICLES, groups=0,
                               subject_length=SUBJECT_LENGTH))
    return db


def copy_db(source: Path, folder: Path) -> Path:
    """The database file and any WAL/SHM beside it."""
    for path in source.parent.glob(source.name + "*"):
        shutil.copy2(path, folder / path.name)
    return folder / source.name


class Served:
    """`nntpd serve` in its own session (so SIGINT can go to its process group, like Ctrl-C)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    def children(self) -> list[int]:
        """The processes it forked: workers and the writer process."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts as gone: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kill_left_over(pids: list[int]) -> None:
    """SIGKILL each process this test started that is still there, one by one."""
    for pid in pids:
        if not gone(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@asynccontextmanager
async def serving(tmp_path: Path, db: Path, workers: int) -> AsyncIterator[Served]:
    """`nntpd serve` on a copy of ``db``; anything still running at the end is killed."""
    port = free_port()
    config = tmp_path / "nntpd.toml"
    config.write_text('[logging]\nlevel = "INFO"\n', encoding="utf-8")
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NNTPD_CONFIG", None)
    command = [sys.executable, "-c", "from cli import main; main()", "--config", str(config),
               "--database", f"sqlite+aiosqlite:///{copy_db(db, tmp_path)}",
               "serve", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out,
                                start_new_session=True)
    served = Served(proc, port, log)
    known: list[int] = [proc.pid]
    try:
        await wait_for_greeting(served)
        known += served.children()
        yield served
    finally:
        known += [pid for pid in served.children() if pid not in known]
        kill_left_over(known[1:])
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def wait_for_greeting(served: Served) -> None:
    for _ in range(200):
        if served.proc.poll() is not None:
            pytest.fail(f"serve exited with {served.proc.returncode}:\n{served.log_tail()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert line.startswith(b"20"), line
        return
    pytest.fail(f"serve did not start:\n{served.log_tail()}")


async def open_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with a small receive buffer, so an answer it does not read backs up soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    greeting = await asyncio.wait_for(reader.readline(), 5)
    assert greeting.startswith(b"20"), greeting
    return reader, writer


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> bytes:
    writer.write(line.encode() + b"\r\n")
    return await asyncio.wait_for(reader.readline(), 5)


async def open_in_group(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client in the group of long subjects (before any command can block the server)."""
    reader, writer = await open_client(port)
    status = await command(reader, writer, f"GROUP {stall.GROUP}")
    assert status.startswith(b"211 "), status
    return reader, writer


async def start_xpat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The backtracking XPAT, its answer not awaited."""
    writer.write(XPAT.encode() + b"\r\n")
    await writer.drain()


async def start_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """`OVER 1-` of a group with MBs of overview: read its first 64 KB, then no more."""
    status = await command(reader, writer, "OVER 1-")
    assert status.startswith(b"224 "), status
    head = await asyncio.wait_for(reader.readexactly(64 * 1024), 10)
    assert b"\r\n.\r\n" not in head, "the whole OVER answer arrived: the group is too small"


STARTERS = {"xpat": start_xpat, "over": start_over}


async def wait_gone(pids: list[int], deadline: float) -> list[int]:
    """The pids still running at ``deadline`` (time.monotonic)."""
    while time.monotonic() < deadline:
        left = [pid for pid in pids if not gone(pid)]
        if not left:
            return []
        await asyncio.sleep(0.05)
    return [pid for pid in pids if not gone(pid)]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("long_command", ["xpat", "over"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
async def test_serve_stops_within_5s_while_commands_run(tmp_path, filled_db, signame, long_command,
                                                        workers):
    """Issue 13: SIGTERM and SIGINT stop the server within 5 s even while a command is running."""
    async with serving(tmp_path, filled_db, workers) as served:
        clients = [await open_in_group(served.port) for _ in range(CLIENTS)]
        for reader, writer in clients:
            await STARTERS[long_command](reader, writer)
        await asyncio.sleep(0.3)  # the commands are under way
        if long_command == "xpat":
            done = sum(len(reader._buffer) > 0 for reader, _ in clients)  # type: ignore[attr-defined]
            state = f"{done} of {CLIENTS} XPATs answered by then"
        else:
            state = f"{CLIENTS} clients stopped reading their OVER answer after 64 KB"
        children = served.children()
        sent = time.monotonic()
        if signame == "SIGINT":
            os.killpg(served.proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        else:
            served.proc.send_signal(signal.SIGTERM)
        left = await wait_gone([served.proc.pid] + children, sent + STOP_WITHIN)
        took = time.monotonic() - sent
        context = (f"{signame} to serve --workers {workers} (pid {served.proc.pid}, children "
                   f"{children}) mid-command: {state}")
        assert not left, (f"{context}: processes {left} still running {STOP_WITHIN:.0f} s later; "
                          f"server log:\n{served.log_tail()}")
        code = served.proc.wait(1)
        assert code == 0, f"{context}: exit status {code} after {took:.1f} s; log:\n{served.log_tail()}"
        for _, writer in clients:
            writer.transport.abort()
