"""Readings from /proc: memory and CPU of the servers, and of the whole machine."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(pid: int) -> list[int]:
    """The process and its direct children (``serve --workers N`` forks N-1 of them)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid] + [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return [pid]


def vm_rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KB, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rollup_kb(pid: int) -> tuple[int, int] | None:
    """(Rss, Pss) in KB from /proc/PID/smaps_rollup."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
    except (OSError, ValueError):
        return None
    return (rss, pss) if rss is not None and pss is not None else None


def pids_named(name: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def tree_rss_kb(pid: int) -> int | None:
    """VmRSS of a process plus its children's, in KB."""
    values = [vm_rss_kb(p) for p in process_tree(pid)]
    return sum(v for v in values if v is not None) if values[0] is not None else None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process and its children (all threads), None if unknown."""
    if not pid:
        return None
    total = 0.0
    for each in process_tree(pid):
        try:
            with open(f"/proc/{each}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            if each == pid:
                return None
    return total


def machine_busy() -> tuple[int, int, int] | None:
    """(busy, steal, total) CPU jiffies of the whole machine, all cores, from /proc/stat.

    Steal is time a virtual CPU was ready to run but the hypervisor ran something
    else (other guests); it is not part of busy."""
    try:
        with open("/proc/stat", "rb") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return total - idle - steal, steal, total


def all_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every process (kernel threads included), with its name."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        try:
            name = raw[raw.index(b"(") + 1: raw.rindex(b")")].decode(errors="replace")
            fields = raw.rsplit(b")", 1)[1].split()
            out[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
        except (ValueError, IndexError):
            continue
    return out


def top_others(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
               exclude: set[int], seconds: float, limit: int = 3) -> list[tuple[str, float]]:
    """The processes (by name, summed) that used the most CPU between two all_cpu() readings,
    besides ``exclude``; as (name, percent of one core)."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        if pid in exclude:
            continue
        delta = cpu - before.get(pid, (name, 0.0))[1]
        if delta > 0:
            key = name.split("/")[0]  # kworker/1:1H -> kworker
            used[key] = used.get(key, 0.0) + delta
    ranked = sorted(used.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, round(cpu / seconds * 100, 1)) for name, cpu in ranked if seconds > 0]
