"""The processes of `nntpd serve`: server workers and the writer process.

All of them are forked before any event loop or database thread exists
(a fork copies only the calling thread). Server processes share the port
with SO_REUSEPORT; on SQLite they hand their posts to one writer process
over a socket pair each (storage/writer_link.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence

from storage.writer_link import run_writer_process

log = logging.getLogger("nntpd")


def _fork(body: Callable[[], None], what: str) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException:  # a child must never return into the CLI
            log.exception("%s failed", what)
            code = 1
        os._exit(code)
    return pid


def fork_writer(url: str, path_host: str, links: int) -> tuple[int, list[socket.socket]]:
    """Start the writer process; returns its pid and one link socket per server process."""
    pairs = [socket.socketpair() for _ in range(links)]

    def body() -> None:
        for _, server_end in pairs:
            server_end.close()
        run_writer_process(url, path_host, [writer_end for writer_end, _ in pairs])

    pid = _fork(body, "writer process")
    for writer_end, _ in pairs:
        writer_end.close()
    return pid, [server_end for _, server_end in pairs]


def fork_workers(count: int, serve_child: Callable[[int], None],
                 links: Sequence[socket.socket | None] = ()) -> list[int]:
    """Fork ``count`` server processes; worker i runs ``serve_child(i)`` (the parent is 0).

    With ``links`` (one per server process), each child keeps only its own.
    """
    children = []
    for index in range(1, count + 1):
        def body(index: int = index) -> None:
            for other, sock in enumerate(links):
                if other != index and sock is not None:
                    sock.close()
            serve_child(index)
        children.append(_fork(body, "worker"))
    for sock in links[1:]:
        if sock is not None:
            sock.close()  # the children's ends: only they use them
    return children


def signal_processes(children: list[int]) -> None:
    """SIGTERM each child without waiting: they wind down alongside the caller."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def stop_processes(children: list[int]) -> None:
    """SIGTERM each child, then wait for all of them."""
    signal_processes(children)
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def watch_workers(children: list[int], gone: Callable[[int], None]) -> None:
    """In the parent's running loop: notice a worker that exits, log it, call ``gone(index)``.

    A worker that dies is not replaced (forking from a process that runs
    threads is unsafe), but it must not go unnoticed, and what it counted
    in the shared limits must not stay counted. Only the workers are
    reaped here: the writer's exit is seen by the links to it.
    """
    def reap() -> None:
        for index, pid in enumerate(children, 1):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if not done:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                log.info("worker %d (pid %d) exited", index, pid)
            else:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                log.error("worker %d (pid %d) %s; the other workers go on without it",
                          index, pid, how)
            gone(index)

    asyncio.get_running_loop().add_signal_handler(signal.SIGCHLD, reap)
