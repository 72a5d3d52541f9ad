"""Medians over repeated rounds, and the one markdown table ``run.py`` prints."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from benchkit.load import Load

#: (target name, scenario) -> one Load per round
Results = dict[tuple[str, str], list[Load]]


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def med(
    results: Results, key: tuple[str, str], get: Callable[[Load], float | None]
) -> float | None:
    return median(get(r) for r in results.get(key, []))


def paired(
    results: Results,
    a: tuple[str, str],
    b: tuple[str, str],
    op: Callable[[float, float], float],
    get: Callable[[Load], float | None],
) -> float | None:
    """Median over rounds of ``op(a, b)`` taken within the same round (robust to drift)."""
    out = []
    for ra, rb in zip(results.get(a, []), results.get(b, []), strict=False):
        va, vb = get(ra), get(rb)
        if va is not None and vb is not None:
            out.append(op(va, vb))
    return median(out)


def ratio(x: float, y: float) -> float:
    return x / y if y else float("nan")


def diff(x: float, y: float) -> float:
    return x - y


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    if v >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def fmt_lat(p50: float | None, p90: float | None, p99: float | None) -> str:
    return f"{fmt_ms(p50)} / {fmt_ms(p90)} / {fmt_ms(p99)}"


def fmt_ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×" if v < 10 else f"{v:.0f}×"


def fmt_added(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("✅" if ok else "❌")


@dataclass
class Row:
    scenario: str
    server: str
    throughput: str = "—"
    latency: str = "—"
    vs_direct: str = "—"
    added: str = "—"
    cpu: str = "—"
    target: str = ""
    met: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def markdown(self) -> str:
        head = (
            "| Scenario | Server | Throughput | Latency p50 / p90 / p99 (ms) | vs direct "
            "| Added p50 (ms) | Server CPU | Target (issue 19) | Met |"
        )
        lines = [head, "|" + "---|" * 9]
        last = None
        for r in self.rows:
            scen = r.scenario if r.scenario != last else ""
            last = r.scenario
            cells = [
                scen,
                r.server,
                r.throughput,
                r.latency,
                r.vs_direct,
                r.added,
                r.cpu,
                r.target,
                r.met,
            ]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        out = "\n".join(lines)
        if self.notes:
            out += "\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return out


def cpu_share(loads: Sequence[Load]) -> str:
    vals = [r.server_cpu for r in loads if r.server_cpu is not None]
    m = median(vals)
    return "—" if m is None else f"{m * 100:.0f}%"
