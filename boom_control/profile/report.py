"""Statistics of a ``boom control`` telemetry log (see :mod:`boom_control.telemetry`).

Definitions (all times in ms):

* ``tick_ms``: compute of a tick, ``encode + policy + plan`` (plan 0 when none ran);
* ``send_ms``: the send itself (the ``send`` stage);
* ``recv_to_send_ms``: from reading the observation to sending the action;
* deadline misses: ``late_sends`` (sent after the tick's deadline; must be 0) plus
  ``skipped_ticks`` (the loop reached the tick after its deadline and sent nothing);
* ``plan_misses``: the plan was not ready, so the policy action was sent;
* ``fallback_rate``: share of ticks that sent anything but the plan's action (a
  ``--policy-only`` run plans nothing: its policy actions are neither misses nor
  fallbacks);
* send jitter: for consecutive sent ticks ``k < k'``, the interval between their send times
  minus the ideal ``(k' - k) * period``; ``jitter_p99_ms`` is the p99 of its absolute value;
* "planned" ticks are those whose plan finished in time (``plan_ms > 0``; its action may
  still have been replaced by a safety command); plan, selection, iterations and
  divergence statistics are over them;
* ``divergence``: L2 distance between the plan's and the policy's action, with its mean
  over the first and the last second (``rate`` ticks) of the run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from boom_control.errors import TelemetryError
from boom_control.profile.stats import summarize
from boom_control.telemetry import TelemetryLog, read_telemetry

SKIPPED = "skipped"


def _stepped(log: TelemetryLog, planned: np.ndarray) -> np.ndarray:
    """Planned ticks whose plan ran iteration by iteration (a whole-plan program has no
    separate selection time)."""
    return planned & np.asarray([len(r.iter_ms) > 0 for r in log.ticks], dtype=bool)


def tick_arrays(log: TelemetryLog) -> dict[str, np.ndarray]:
    """Per-tick columns of a log as arrays (one entry per tick record)."""
    t = log.ticks
    col = lambda name: np.asarray([getattr(r, name) for r in t], dtype=float)  # noqa: E731
    out = {
        name: col(name)
        for name in (
            "tick", "t_deadline", "t_recv", "t_send", "obs_age_ms", "encode_ms", "policy_ms",
            "select_ms", "plan_ms", "iterations", "slack_ms", "divergence", "send_ms",
        )
    }  # fmt: skip
    out["fallback"] = np.asarray([r.fallback for r in t], dtype=bool)
    out["late"] = np.asarray([r.late for r in t], dtype=bool)
    out["sent"] = np.asarray([r.action_source != SKIPPED for r in t], dtype=bool)
    out["planned"] = out["plan_ms"] > 0  # a plan finished (its action may not have been sent)
    out["tick_ms"] = out["encode_ms"] + out["policy_ms"] + out["plan_ms"]
    out["recv_to_send_ms"] = (out["t_send"] - out["t_recv"]) * 1e3
    return out


def send_jitter(ticks: np.ndarray, t_send: np.ndarray, period_ms: float) -> np.ndarray:
    """Deviations (ms) of send-to-send intervals from the ideal, for sent ticks only.

    Args:
        ticks: ``(T,)`` tick indices of the sent ticks; t_send: ``(T,)`` their send times (s).
    """
    if len(ticks) < 2:
        return np.zeros(0)
    return np.diff(t_send) * 1e3 - np.diff(ticks) * period_ms


def analyse(log: TelemetryLog) -> dict[str, Any]:
    """Every statistic of a log (JSON-ready); see the module docstring."""
    a = tick_arrays(log)
    head = log.header
    rate = float(head.get("rate", 50.0))
    period = 1000.0 / rate
    n = len(log.ticks)
    sent, planned = a["sent"], a["planned"]
    computed = sent & (a["encode_ms"] > 0)
    iter_ms = np.asarray([x for r in log.ticks for x in r.iter_ms], dtype=float)
    jitter = send_jitter(a["tick"][sent], a["t_send"][sent], period)
    window = max(round(rate), 1)
    iters = Counter(int(i) for i in a["iterations"][planned])
    div = a["divergence"][planned]
    sources = Counter(r.action_source for r in log.ticks)
    alarms = Counter(r.alarm for r in log.ticks if r.alarm)
    stats = {
        "ticks": n,
        "period_ms": period,
        "budget_ms": head.get("budget_ms"),
        "late_sends": int(a["late"].sum()),
        "skipped_ticks": int((~sent).sum()),
        "deadline_misses": int(a["late"].sum() + (~sent).sum()),
        "plan_misses": int(sum(r.action_source == "policy" and r.fallback for r in log.ticks)),
        "fallback_rate": float(a["fallback"].mean()) if n else 0.0,
        "action_sources": dict(sources),
        "alarms": dict(alarms),
        "iterations_hist": {str(k): v for k, v in sorted(iters.items())},
        "mean_iterations": float(a["iterations"][planned].mean()) if planned.any() else 0.0,
        "stages": {
            "encode": summarize(a["encode_ms"][computed]),
            "policy": summarize(a["policy_ms"][computed]),
            "iteration": summarize(iter_ms),
            "select": summarize(a["select_ms"][_stepped(log, planned)]),
            "plan": summarize(a["plan_ms"][planned]),
            "tick": summarize(a["tick_ms"][computed]),
            "send": summarize(a["send_ms"][a["send_ms"] > 0]),  # real time only
            "recv_to_send": summarize(a["recv_to_send_ms"][sent]),
        },
        "obs_age_ms": summarize(a["obs_age_ms"][a["obs_age_ms"] >= 0]),
        "slack_ms": summarize(a["slack_ms"][sent]),
        "send_interval_deviation_ms": summarize(jitter),
        "jitter_p99_ms": float(np.percentile(np.abs(jitter), 99)) if len(jitter) else 0.0,
        "divergence": summarize(div),
        "divergence_first_second": float(div[:window].mean()) if len(div) else 0.0,
        "divergence_last_second": float(div[-window:].mean()) if len(div) else 0.0,
    }
    return {"header": head, "stats": stats, "summary": log.summary}


def report_log(path: str | Path) -> tuple[TelemetryLog, dict[str, Any]]:
    """Read a telemetry file and analyse it.

    Raises:
        TelemetryError: the file is not a telemetry log (no header, foreign records).
    """
    try:
        log = read_telemetry(path)
    except TypeError as err:  # records without the TickRecord fields
        raise TelemetryError(f"{path} is not a telemetry log ({err})") from None
    return log, analyse(log)


def format_report(result: dict[str, Any]) -> str:
    """Tables of :func:`analyse`'s result: stages, then deadlines, fallbacks and jitter."""
    from boom_control.profile.stats import format_table

    head, s = result["header"], result["stats"]
    cols = ["n", "p50", "p90", "p99", "p99.9", "max"]
    rows = [{"stage": k, **v} for k, v in s["stages"].items()]
    rows += [{"stage": "obs age", **s["obs_age_ms"]}, {"stage": "slack", **s["slack_ms"]}]
    rows += [{"stage": "send interval dev", **s["send_interval_deviation_ms"]}]
    planner = head.get("planner", {})
    acting = (
        "the policy alone"
        if head.get("policy_only")
        else f"{planner.get('samples', '?')} samples x up to {planner.get('iterations', '?')} "
        "iterations"
    )
    lines = [
        f"{head.get('task', '?')} on {head.get('backend', '?')}, {head.get('device', '?')}: "
        f"{s['ticks']} ticks at {1000.0 / s['period_ms']:g} Hz, budget {s['budget_ms']} ms, "
        f"{acting} (ms):",
        format_table([{k: r.get(k, "") for k in ["stage", *cols]} for r in rows], ["stage", *cols]),
        f"deadline misses: {s['deadline_misses']} ({s['late_sends']} late sends, "
        f"{s['skipped_ticks']} skipped ticks); plan misses {s['plan_misses']}; "
        f"fallback rate {s['fallback_rate']:.1%}",
        f"send jitter p99 {s['jitter_p99_ms']:.3f} ms (|interval - ideal period|)",
        f"iterations per planned tick: {s['iterations_hist']} (mean {s['mean_iterations']:.2f})",
        f"actor divergence |plan - policy|: p50 {s['divergence']['p50']:.3f}, p99 "
        f"{s['divergence']['p99']:.3f}; first second {s['divergence_first_second']:.3f}, "
        f"last second {s['divergence_last_second']:.3f}",
        f"action sources {s['action_sources']}"
        + (f"; alarms {s['alarms']}" if s["alarms"] else ""),
    ]
    return "\n".join(lines)


def report_run(path: str | Path, out: str | Path, plots: bool = True) -> dict[str, Any]:
    """Analyse a telemetry log; write ``report.json`` and the plots to ``out``."""
    import json

    log, result = report_log(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result["log"] = str(path)
    if plots:
        from boom_control.profile.plots import plot_stage_histograms, plot_timeline

        a = tick_arrays(log)
        computed = a["sent"] & (a["encode_ms"] > 0)
        times = {
            "encode": a["encode_ms"][computed],
            "policy": a["policy_ms"][computed],
            "iteration": np.asarray([x for r in log.ticks for x in r.iter_ms], dtype=float),
            "select": a["select_ms"][_stepped(log, a["planned"])],
            "plan": a["plan_ms"][a["planned"]],
            "tick": a["tick_ms"][computed],
            "send": a["send_ms"][a["send_ms"] > 0],
        }
        title = f"{log.header.get('task', '')} control run: stage latency (ms)"
        result["plots"] = [
            str(plot_stage_histograms(times, out / "hist_stages.png", title)),
            str(plot_timeline(a, log.header, out / "timeline.png")),
        ]
    (out / "report.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result
