"""The servers under test: ours (a subprocess on a fresh database) and INN 2.7 (Debian inn2).

Also the memory readings both need: VmRSS of one process, and RSS/PSS of
INN's per-connection nnrpd processes from /proc/PID/smaps_rollup.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nntp_client import Conn, ProtocolError
from procfs import pids_named, rollup_kb
from workload import PATH_HOST

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_version() -> str:
    """The commit of REPO, with +dirty for uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown"
        # bench/ itself is not the code under test
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)bench"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def snapshot_code(dest: Path) -> Path:
    """Copy the server's code (as it is in the working tree now) to ``dest`` and return it.

    Others edit the checkout while a run takes minutes; each server of the run
    starts from this copy, so all of them run the same code.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("nntpd", "storage"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "cli.py", dest / "cli.py")
    return dest


# -- ours -----------------------------------------------------------------------


def nntpd_command() -> list[str]:
    """The CLI of the checkout this file is in (REPO goes first on PYTHONPATH, see OurServer).

    Not the ``nntpd`` console script: with an editable install elsewhere it
    could run another copy of the code than the one being measured.
    """
    return [sys.executable, "-c", "from cli import main; main()"]


class OurServer:
    """``nntpd serve`` as a subprocess, on its own configuration and SQLite database."""

    def __init__(self, workdir: Path, port: int, db: Path | None = None,
                 max_connections: int = 12000, code: Path = REPO, workers: int = 0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = port
        self.db = db or workdir / "bench.sqlite3"
        self.url = f"sqlite+aiosqlite:///{self.db}"
        self.config = workdir / "bench.toml"
        # max_connections*: the defaults (5000 / 500 per address) would refuse
        # the idle-connection test, which comes from one address.
        self.config.write_text(
            f'[server]\nport = {port}\npath_host = "{PATH_HOST}"\n'
            f"max_connections = {max_connections}\nmax_connections_per_address = {max_connections}\n"
            f'[database]\nurl = "{self.url}"\n[logging]\nlevel = "WARNING"\n',
            encoding="utf-8",
        )
        self.log = workdir / "server.log"
        self.env = dict(os.environ)
        self.env.pop("NNTPD_CONFIG", None)
        # the code first on the path (before the editable install's finder)
        self.code = code
        self.workers = workers  # serve --workers N (0: the server's default)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), self.env.get("PYTHONPATH")]))
        self.env["NNTPD_BENCH_CODE"] = str(code)
        self.base = nntpd_command() + ["--config", str(self.config)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def code_path(self) -> str:
        """Where the server's ``nntpd`` package is imported from, with this environment."""
        out = subprocess.run([sys.executable, "-c", "import nntpd, storage, cli; "
                              "print(nntpd.__file__, storage.__file__, cli.__file__)"],
                             cwd=self.workdir, env=self.env, capture_output=True, text=True)
        return out.stdout.strip() or out.stderr.strip()

    def init(self) -> None:
        result = subprocess.run(self.base + ["init"], cwd=self.workdir, env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nntpd init failed:\n{result.stdout}{result.stderr}")

    async def start(self) -> None:
        log = open(self.log, "ab")
        extra = ["--workers", str(self.workers)] if self.workers else []
        self.proc = subprocess.Popen(self.base + ["serve", "--port", str(self.port)] + extra,
                                     cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nntpd serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = await Conn.open(self.port)
                await conn.close()
                return
            except (OSError, ProtocolError) as exc:
                last = exc
                await asyncio.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nntpd serve did not greet on port {self.port} ({last}):\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def db_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.db.parent.glob(self.db.name + "*") if f.is_file())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- INN ------------------------------------------------------------------------

NEWSBIN = Path("/usr/lib/news/bin")
INN_CONF = Path("/etc/news/inn.conf")
READERS_CONF = Path("/etc/news/readers.conf")
INN_SETTINGS = {"domain": "bench.local", "port": "11119", "bindaddress": "127.0.0.1"}
READERS_BLOCK = """
# Added by nntpd's bench/bench.py: loopback may read and post.
auth "nntpd-bench" {
    hosts: "localhost, 127.0.0.1, ::1"
    default: "<nntpd-bench>"
}
access "nntpd-bench" {
    users: "<nntpd-bench>"
    newsgroups: "*"
    access: RPA
}
"""


def _as_news(command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a shell command as news. Output goes through a file, not a pipe: rc.news leaves
    innd and innwatch running with its stdout, so a pipe would never reach end of file."""
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(["su", "news", "-s", "/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        out.seek(0)
        result.stdout, result.stderr = out.read(), ""
    return result


class Inn:
    """INN 2.7 as installed by Debian's inn2: install/configure if needed, start, groups, stop."""

    def __init__(self, log: callable = print) -> None:  # type: ignore[valid-type]
        self.log = log
        self.started_by_us = False
        self.port = int(INN_SETTINGS["port"])
        self.groups: list[str] = []
        self.version = "?"

    # setup
    def ensure_installed(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("--inn needs root (to install, configure and start INN as news)")
        if not (NEWSBIN / "innd").exists():
            self.log("INN: /usr/lib/news/bin/innd missing, installing inn2 with apt-get")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            # inn2's postinst fails without a domain; configure afterwards.
            subprocess.run(["apt-get", "install", "-y", "inn2"], env=env, timeout=1800)
            self.configure()
            subprocess.run(["dpkg", "--configure", "-a"], env=env, timeout=1800)
            if not (NEWSBIN / "innd").exists():
                raise RuntimeError("installing inn2 failed")
        else:
            self.configure()
        self.port = self.conf_value("port", int(INN_SETTINGS["port"]))
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "inn2"],
                                 capture_output=True, text=True, timeout=30)
            self.version = out.stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            pass

    def configure(self) -> None:
        """Add domain/port/bindaddress to inn.conf when they are not set (existing values win)."""
        if not INN_CONF.exists():
            return
        text = INN_CONF.read_text()
        missing = [k for k in INN_SETTINGS if not re.search(rf"^{k}:\s*\S", text, re.M)]
        if missing:
            self.log(f"INN: adding {', '.join(missing)} to {INN_CONF}")
            add = "".join(f"{k}: {INN_SETTINGS[k]}\n" for k in missing)
            INN_CONF.write_text(text + ("" if text.endswith("\n") else "\n") + add)

    def conf_value(self, key: str, default: int) -> int:
        match = re.search(rf"^{key}:\s*(\d+)", INN_CONF.read_text(), re.M) if INN_CONF.exists() else None
        return int(match.group(1)) if match else default

    # running
    def running(self) -> bool:
        return _as_news(f"{NEWSBIN}/ctlinnd -t 5 mode", timeout=30).returncode == 0

    async def start(self) -> None:
        if self.running():
            self.log(f"INN: innd already running (port {self.port}); will leave it running")
        else:
            self.log("INN: starting innd with rc.news")
            self.started_by_us = True
            result = _as_news(f"{NEWSBIN}/rc.news")
            if result.returncode != 0:
                raise RuntimeError(f"rc.news failed: {result.stdout}{result.stderr}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.running():
                try:
                    conn = await Conn.open(self.port)
                    await conn.close()
                    break
                except (OSError, ProtocolError):
                    pass
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"INN does not answer on 127.0.0.1:{self.port}")
        await self.ensure_posting()

    async def ensure_posting(self) -> None:
        """nnrpd must say 200 (posting allowed) to loopback; otherwise add a readers.conf block."""
        conn = await Conn.open(self.port)
        greeting = conn.greeting
        await conn.close()
        if greeting.startswith("200"):
            return
        self.log(f"INN: reader greeting {greeting!r}: allowing 127.0.0.1 to read and post in {READERS_CONF}")
        with READERS_CONF.open("a") as f:
            f.write(READERS_BLOCK)
        conn = await Conn.open(self.port)  # nnrpd reads readers.conf per connection
        greeting = conn.greeting
        await conn.close()
        if not greeting.startswith("200"):
            raise RuntimeError(f"INN still refuses posting: {greeting!r}")

    def newgroup(self, name: str) -> None:
        result = _as_news(f"{NEWSBIN}/ctlinnd newgroup {name} y nntpd-bench")
        if result.returncode != 0:
            raise RuntimeError(f"ctlinnd newgroup {name}: {result.stdout}{result.stderr}")
        self.groups.append(name)

    def remove_groups(self) -> None:
        """Drop the run's groups from the active file (the spool keeps the articles until expire)."""
        for name in self.groups:
            _as_news(f"{NEWSBIN}/ctlinnd rmgroup {name}")
        self.groups.clear()

    def stop(self) -> None:
        if self.started_by_us:
            self.log("INN: stopping innd (this run started it)")
            _as_news(f"{NEWSBIN}/rc.news stop")
            self.started_by_us = False

    def innd_pid(self) -> int | None:
        try:
            return int(Path("/run/news/innd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pids = pids_named("innd")
            return pids[0] if pids else None


def nnrpd_memory(exclude: set[int] = frozenset()) -> tuple[int, int, int]:  # type: ignore[assignment]
    """(processes, summed RSS KB, summed PSS KB) of the nnrpd processes not in ``exclude``."""
    count = rss = pss = 0
    for pid in pids_named("nnrpd"):
        if pid in exclude:
            continue
        figures = rollup_kb(pid)
        if figures:
            count += 1
            rss += figures[0]
            pss += figures[1]
    return count, rss, pss
