"""The validation report: model against published results, one figure per study, self-contained.

Where a study's targets are rates at visits or times to events, a first figure shows the whole
virtual pool's course (the rate at every visit; Kaplan-Meier event-free curves) with the
published values on it. The second shows, per target of a study, the model's 90 % predictive
interval (bar) and median (dot) over replicated trials of the published size, and the published
value (diamond) with its 95 % interval where the study gave one. The summary table lists every
published entry, reproduced or not (with the reason); the seeds' Tables 1 and 2 are set beside
the model's values.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

from matplotlib.figure import Figure

from ketadur import __version__
from ketadur.reports.trial_report import _STYLE, DISCLAIMER, _png, _table_html


def _fmt(x: float | None, digits: int = 3) -> str | None:
    return None if x is None else f"{x:.{digits}g}"


def plot_study(rows: list[dict]) -> Figure:
    """Published value and interval against the model's predictive interval, one panel per
    target of a study (rows of :class:`~ketadur.evidence.validate.ValidationResult`); each panel
    has its own scale, since a study's targets mix units (%, days, hazard ratios)."""
    fig = Figure(figsize=(10.0, 0.8 * len(rows) + 0.8))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for i, (ax, r) in enumerate(zip(axes, rows, strict=True)):
        first = i == 0
        if r["model_p05"] is not None:
            band = "model 90 % interval" if first else None
            ax.plot([r["model_p05"], r["model_p95"]], [0, 0], lw=8, color="#9ecae1",
                    solid_capstyle="butt", label=band)  # fmt: skip
            ax.plot(r["model_median"], 0, "o", color="#08519c",
                    label="model median" if first else None)  # fmt: skip
        low, high = r["published_ci95"]
        if low is not None or high is not None:
            lo = r["value"] if low is None else low
            hi = r["value"] if high is None else high
            ax.plot([lo, hi], [0, 0], color="#a50f15", lw=1.5)
        ax.plot(r["value"], 0, "D", color="#a50f15", label="published" if first else None)
        ax.set_yticks([0])
        ax.set_yticklabels([f"{r['id']} ({r['unit']})"], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.08)
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.subplots_adjust(left=0.4, right=0.8, top=0.95, bottom=0.08, hspace=1.0)
    return fig


def _published_point(r: dict, c: dict) -> tuple[float, float, tuple, tuple] | None:
    """Where a published value sits on its course (x, y) and its error bars (x, y). A relapse
    fraction by the end of follow-up sits at the course's last time."""
    low, high = r["published_ci95"]
    v = r["value"]
    lo = v if low is None else low
    hi = v if high is None else high
    if c["kind"] == "rate":
        return c["day"], v, (0.0, 0.0), (v - lo, hi - v)
    if c["quantity"] == "relapse_fraction":
        day = c["day"]
        if day is None:
            day = max((t for curve in c["curves"].values() for t, _ in curve), default=0.0)
        return day, 100.0 - v, (0.0, 0.0), (hi - v, v - lo)
    if c["quantity"] == "median_time":
        u = c["unit_days"]
        return v * u, 50.0, ((v - lo) * u, (hi - v) * u), (0.0, 0.0)
    return None


def plot_courses(rows: list[dict], courses: dict[str, dict]) -> Figure | None:
    """The virtual pool's course behind a study's targets, one panel per rate (endpoint and arms,
    by visit day) and one per time-to-event endpoint (every arm's Kaplan-Meier event-free curve),
    with each published value (diamond, 95 % interval) where it sits; None when no target of the
    study has a course."""
    panels: dict[tuple, tuple[dict, list[dict]]] = {}
    for r in rows:
        c = courses.get(r["id"])
        if not c:
            continue
        key = (c["kind"], c["endpoint"], *(c.get("arms") or ()))
        if key not in panels:
            panels[key] = ({**c, "curves": dict(c.get("curves", {}))}, [])
        merged, members = panels[key]
        merged["curves"].update(c.get("curves", {}))
        members.append(r)
    if not panels:
        return None
    fig = Figure(figsize=(10.0, 2.6 * len(panels) + 0.4))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (c, members) in zip(axes, panels.values(), strict=True):
        if c["kind"] == "rate":
            x, y = zip(*c["points"], strict=True) if c["points"] else ((), ())
            ax.plot(x, y, "-o", color="#08519c", ms=3,
                    label=f"model pool: {c['endpoint']} ({', '.join(c['arms'])})")  # fmt: skip
            ax.set_ylabel(f"{c['endpoint']} (%)", fontsize=8)
        else:
            for arm, curve in c["curves"].items():
                t, f = zip(*curve, strict=True) if curve else ((), ())
                ax.step(t, f, where="post", label=f"model pool, Kaplan-Meier: {arm}")
            ax.set_ylabel(f"free of {c['endpoint']} (%)", fontsize=8)
            ax.set_ylim(0, 102)
        first = True
        for r in members:
            at = _published_point(r, courses[r["id"]])
            if at is None:
                continue
            x, y, xerr, yerr = at
            ax.errorbar([x], [y], xerr=[[xerr[0]], [xerr[1]]], yerr=[[yerr[0]], [yerr[1]]],
                        fmt="D", color="#a50f15", ms=5, capsize=3,
                        label="published (95 % CI)" if first else None)  # fmt: skip
            first = False
        xlabel = "days" if c["kind"] == "rate" else "days from the start of follow-up"
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def summary_rows(result) -> list[dict]:
    """One display row per published entry."""
    out = []
    for r in result.rows:
        if r["status"] != "reproduced":
            out.append({"target": r["id"], "role": "—", "published": _fmt_pub(r),
                        "published 95 % CI": None, "model median": None,
                        "model 90 % interval": None, "inside": "not reproduced",
                        "source": r["source"], "note": r["reason"]})  # fmt: skip
            continue
        low, high = r["published_ci95"]
        ci = None if low is None and high is None else f"{_fmt(low)} to {_fmt(high)}"
        interval = (
            None if r["model_p05"] is None else f"{_fmt(r['model_p05'])} to {_fmt(r['model_p95'])}"
        )
        out.append(
            {"target": r["id"], "role": r["role"], "published": f"{_fmt(r['value'])} {r['unit']}",
             "published 95 % CI": ci, "model median": _fmt(r["model_median"]),
             "model 90 % interval": interval, "inside": "yes" if r["inside_90"] else "NO",
             "source": r["source"], "note": r["note"]}
        )  # fmt: skip
    return out


def _fmt_pub(r: dict) -> str:
    return f"{r['published_value']} {r['unit'] or ''}".strip()


def seed_table_rows(result) -> list[dict]:
    """The seeds' Tables 1 and 2, each row beside the model's values for its targets."""
    by_id = {r["id"]: r for r in result.rows}
    out = []
    for s in result.seed_tables:
        parts = []
        for t in s.targets:
            r = by_id.get(t)
            if r is None or r["status"] != "reproduced":
                continue
            parts.append(
                f"{t}: published {_fmt(r['value'])} {r['unit']}, model {_fmt(r['model_median'])}"
                f" ({_fmt(r['model_p05'])} to {_fmt(r['model_p95'])}) "
                f"{'inside' if r['inside_90'] else 'OUTSIDE'}"
            )
        out.append({"table": s.table, "study": s.study, "seed's finding": s.claim,
                    "model": "; ".join(parts) or None, "note": s.note or None})  # fmt: skip
    return out


def phenomena_table_rows(result) -> list[dict]:
    """The seed phenomena as report rows: the claim, the ratio required and the model's."""
    return [
        {
            "phenomenon": p["id"],
            "claim": p["claim"],
            "required ratio": f"≥ {p['required']:g}",
            "model": "—" if p["value"] is None else _fmt(p["value"]),
            "reached": "yes" if p["reached"] else "no",
        }
        for p in result.phenomena
    ]


def validation_html(result) -> str:
    """The HTML report of a :class:`~ketadur.evidence.validate.ValidationResult`."""
    studies: dict[str, list[dict]] = {}
    for r in result.rows:
        if r["status"] == "reproduced":
            studies.setdefault(r["study"], []).append(r)
    figs = ""
    for study, rows in studies.items():
        figs += f"<h3>{html.escape(study)}</h3>"
        course = plot_courses(rows, result.courses)
        if course is not None:
            figs += (f"<img alt='{html.escape(study)}: course' "
                     f"src='data:image/png;base64,{_png(course)}'><br>")  # fmt: skip
        figs += (f"<img alt='{html.escape(study)}' "
                 f"src='data:image/png;base64,{_png(plot_study(rows))}'>")  # fmt: skip
    s = result.summary()
    share = None if s["fraction_inside"] is None else 100 * s["fraction_inside"]
    meta = {
        "published entries": s["published_entries"],
        "reproduced": s["reproduced"],
        "inside the 90 % interval": f"{s['inside_90']} ({_fmt(share)} %)",
        "patients per design (pool)": result.pool,
        "replicated trials per target": result.replicates,
        "model parameters": result.provenance.get("parameters", "registry"),
        "posterior parameter draws in the interval": result.provenance.get("parameter_draws", 0),
        "seed": result.seed,
        "ketadur version": __version__,
        "run time (s)": round(result.runtime_s, 1),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ketadur validation</title>
<style>{_STYLE}</style></head><body>
<h1>ketadur: the model against published results</h1>
<p class="warn">{html.escape(DISCLAIMER)}</p>
<p>Every reproduced target's design is simulated on a pool of virtual patients and observed as the
study was (rater noise, missed visits, dropout); the trial is then replicated at its published size.
The model's median and 90 % predictive interval over those replicates are set against the published
value and its 95 % interval. Calibration targets were used to fit the model; validation targets
were not.</p>
<h2>Run</h2>{_table_html([meta])}
<h2>The seeds' Tables 1 and 2 beside the model</h2>{_table_html(seed_table_rows(result))}
<h2>Seed phenomena on the calibrated typical patient</h2>{_table_html(phenomena_table_rows(result))}
<h2>Per study</h2>{figs}
<h2>Every published entry</h2>{_table_html(summary_rows(result))}
<h2>Results (JSON)</h2><pre>{html.escape(json.dumps(result.to_json(), indent=1))}</pre>
<p class="warn">{html.escape(DISCLAIMER)}</p>
</body></html>
"""
