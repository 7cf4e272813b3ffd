"""Tables: one per server and client kind, the comparison with INN and its targets, the rest."""

from __future__ import annotations

import os

from dataclasses import dataclass
from typing import Any

from workload import Phase

MODES = ("ordinary", "quick-ACK")


def render(rows: list[tuple[str, ...]], right_from: int = 1, left: tuple[int, ...] = ()) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i < right_from or i in left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def phase_table(phases: list[Phase]) -> str:
    """One row per phase. CPU over the phase's wall time: 'server' and 'client' are the two
    processes (100% = one core), 'machine' the whole machine's busy share of all its cores
    (anything else running shows here), 'other' what the machine spent beyond server and
    client, in the same units as those two (kernel work for loopback TCP, other processes),
    'steal' the share of all cores the hypervisor gave to other guests (a shared host), with
    the busiest other processes. INN's CPU is not measured (one nnrpd per connection)."""
    cores = os.cpu_count() or 1
    rows = [("phase", "ops", "errors", "seconds", "rate", "unit", "p50 ms", "p99 ms",
             "CPU server", "client", "machine", "other", "steal", "busiest other processes")]
    for p in phases:
        s = p.summary()
        cpu = [f"{s[key]:.0f}%" if key in s else "-"
               for key in ("server_cpu_pct", "client_cpu_pct", "machine_cpu_pct")]
        other = "-"
        if all(key in s for key in ("server_cpu_pct", "client_cpu_pct", "machine_cpu_pct")):
            rest = s["machine_cpu_pct"] * cores - s["server_cpu_pct"] - s["client_cpu_pct"]
            other = f"{max(0.0, rest):.0f}%"
        busiest = ", ".join(f"{name} {pct:.0f}%" for name, pct in s.get("other_processes", [])
                            if pct >= 1) or "-"
        steal = f"{s['steal_pct']:.0f}%" if "steal_pct" in s else "-"
        rows.append((p.name, str(s["ops"]), str(s["errors"]), f"{s['seconds']:.2f}",
                     f"{s['rate']:,.0f}", s["unit"], f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                     *cpu, other, steal, busiest))
    return render(rows, right_from=1, left=(len(rows[0]) - 1,))


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    return f"{value:,.0f}"


@dataclass
class Figure:
    label: str
    phase: str
    metric: str  # "rate", "p50", "p99"
    unit: str


def figures(connections: int) -> list[Figure]:
    c = connections
    w1 = "OVER 100-article window, 1 conn"
    wc = f"OVER 100-article window, {c} conns"
    return [
        Figure(f"POST, {c} conns (articles/s)", "POST", "rate", "articles/s"),
        Figure("OVER whole group (lines/s)", "OVER whole group", "rate", "lines/s"),
        Figure(f"{w1}, p50", w1, "p50", "ms"),
        Figure(f"{w1}, p99", w1, "p99", "ms"),
        Figure(f"{wc} (req/s)", wc, "rate", "req/s"),
        Figure(f"ARTICLE by number, {c} conns (req/s)", "ARTICLE by number", "rate", "req/s"),
        Figure("ARTICLE by number, p50", "ARTICLE by number", "p50", "ms"),
        Figure("ARTICLE by number, p99", "ARTICLE by number", "p99", "ms"),
        Figure(f"ARTICLE by Message-ID, {c} conns (req/s)", "ARTICLE by Message-ID", "rate", "req/s"),
        Figure("ARTICLE by Message-ID, p50", "ARTICLE by Message-ID", "p50", "ms"),
        Figure("ARTICLE by Message-ID, p99", "ARTICLE by Message-ID", "p99", "ms"),
        Figure("HDR Subject whole group (lines/s)", "HDR Subject whole group", "rate", "lines/s"),
        Figure("GROUP, 1 conn, p50", "GROUP", "p50", "ms"),
        Figure("GROUP, 1 conn, p99", "GROUP", "p99", "ms"),
        Figure("LIST ACTIVE, 1 conn, p50", "LIST ACTIVE", "p50", "ms"),
        Figure("LIST ACTIVE, 1 conn, p99", "LIST ACTIVE", "p99", "ms"),
    ]


def value(phases: dict[str, Phase] | None, fig: Figure) -> float | None:
    if not phases or fig.phase not in phases:
        return None
    p = phases[fig.phase]
    if not p.ops or p.errors:
        return None
    if fig.metric == "rate":
        return p.rate()
    return p.pct(0.5 if fig.metric == "p50" else 0.99)


def ratio_target(fig: Figure, mode: str) -> float | None:
    """The minimum ours/INN of this figure in this client mode, if the issue sets one."""
    if fig.metric != "rate":
        return None
    if fig.phase in ("POST", "OVER whole group"):
        return 1.0
    if fig.phase.startswith("ARTICLE") and mode == "quick-ACK":
        return 0.7
    return None


def judge_ratio(ratio: float | None, need: float) -> str:
    if ratio is None:
        return "FAIL (no valid figure)"
    if ratio >= need:
        return "pass"
    return f"FAIL ({(1 - ratio / need) * 100:.0f}% short)"


def judge_max(got: float | None, limit: float, unit: str) -> str:
    if got is None:
        return "FAIL (no valid figure)"
    if got < limit:
        return "pass"
    return f"FAIL ({(got / limit - 1) * 100:.0f}% over)"


def comparison(results: dict[str, dict[str, dict[str, Phase]]],
               ceilings: dict[str, dict[str, dict[str, Phase]]],
               connections: int, verdicts: list[dict[str, Any]]) -> str:
    """Rows: each figure in each client mode; ours, INN, ours/INN, the client's ceiling, target."""
    rows = [("figure", "client", "ours", "INN", "ours/INN", "client ceiling", "ours, INN of ceiling",
             "target", "result")]
    for fig in figures(connections):
        for mode in MODES:
            ours = value(results.get("ours", {}).get(mode), fig)
            inn = value(results.get("INN", {}).get(mode), fig)
            if ours is None and inn is None:
                continue
            ratio = ours / inn if ours is not None and inn else None
            ceil = max((v for v in (value(c.get(mode), fig) for c in ceilings.values()) if v is not None),
                       default=None) if fig.metric == "rate" else None
            target, result = "", ""
            need = ratio_target(fig, mode)
            if need is not None and "INN" in results:
                target = f"ours/INN >= {need:.1f}"
                result = judge_ratio(ratio, need)
            if fig.phase.startswith("OVER 100-article window, 1") and fig.metric == "p50" \
                    and mode == "ordinary":
                target, result = "ours < 2 ms", judge_max(ours, 2.0, "ms")
            if target:
                verdicts.append({"figure": fig.label, "client": mode, "ours": ours, "inn": inn,
                                 "ratio": ratio, "target": target, "result": result})
            share = ""
            if ceil:
                share = ", ".join(f"{v / ceil:.0%}" if v is not None else "-" for v in (ours, inn))
            rows.append((fig.label, mode, fmt(ours, fig.unit), fmt(inn, fig.unit),
                         f"{ratio:.2f}" if ratio is not None else "-",
                         fmt(ceil, fig.unit), share, target, result))
    if "INN" not in results:
        rows = [r[:3] + r[5:] for r in rows]
    if not ceilings:
        rows = [r[:-4] + r[-2:] for r in rows]
    return render(rows, right_from=2)


def ceiling_table(ceilings: dict[str, dict[str, dict[str, Phase]]], connections: int) -> str:
    variants = list(ceilings)
    header = ("figure",) + tuple(f"{mode} ({v})" for v in variants for mode in MODES)
    rows = [header]
    for fig in figures(connections):
        if fig.metric != "rate" and "p50" not in fig.metric:
            continue
        cells = [fig.label]
        for v in variants:
            for mode in MODES:
                cells.append(fmt(value(ceilings[v].get(mode), fig), fig.unit))
        rows.append(tuple(cells))
    return render(rows)
