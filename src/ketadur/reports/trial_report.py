"""Trial figures and the self-contained HTML report of an in-silico trial.

The report needs no server: figures are embedded as PNG (base64), styles inline. Per arm it shows
MADRS trajectories (median, 10-90 % band, a few patients), Kaplan-Meier curves of time to relapse
with numbers at risk, the endpoint table, the protocol's workflow and the signalling cascade, the
exact protocol text, the seed, the package version and the run time, and the research-use
disclaimer.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime

import numpy as np
import yaml
from matplotlib.figure import Figure

from ketadur import __version__
from ketadur.trials import survival as sv

DISCLAIMER = (
    "Research software. Every number here is a model-based hypothesis for a virtual population, "
    "with its uncertainty; it is not a prediction for any real patient and never a dosing "
    "instruction."
)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_trajectories(result, n_individual: int = 3) -> Figure:
    """Observed MADRS per arm: median and 10-90 % band over visit days, and a few patients."""
    v = result.observations.measure("madrs")
    arms = result.observations.arms
    cols = min(3, len(arms))
    rows = int(np.ceil(len(arms) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True)).ravel()
    for ax, arm in zip(axes, arms, strict=False):
        va = v[v["arm"] == arm]
        q = va.groupby(va["t_days"].round(3))["value"].quantile([0.1, 0.5, 0.9]).unstack()
        ax.fill_between(q.index, q[0.1], q[0.9], color="tab:blue", alpha=0.2, label="10-90 %")
        ax.plot(q.index, q[0.5], color="tab:blue", lw=2, label="median")
        for s in list(dict.fromkeys(va["subject_id"]))[:n_individual]:
            one = va[va["subject_id"] == s]
            ax.plot(one["t_days"], one["value"], color="0.4", lw=0.7, alpha=0.8)
        ax.set_title(arm, fontsize=10)
        ax.set_ylim(0, 50)
    for ax in axes[len(arms) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.supxlabel("days")
    fig.supylabel("MADRS (observed)")
    return fig


def plot_km(result) -> Figure:
    """Kaplan-Meier curves of time to relapse among responders, all arms, with 95 % bands and
    the numbers at risk below."""
    tte = result.time_to_relapse
    arms = [a for a in result.observations.arms if (tte["arm"] == a).any()]
    fig = Figure(figsize=(10, 5.5 + 0.22 * len(arms)), layout="constrained")
    ax, tab = fig.subplots(2, 1, height_ratios=[4, 0.4 + 0.22 * len(arms)])
    grid = np.arange(0.0, float(tte["t_days"].max() if len(tte) else 1.0) + 1.0, 28.0)
    cells, colours = [], []
    for k, arm in enumerate(arms):
        kmf = sv.kaplan_meier(tte, arm)
        if kmf is None:
            continue
        colour = f"C{k % 10}"
        kmf.plot_survival_function(ax=ax, ci_show=True, color=colour, lw=1.5)
        at_risk = [int((tte.loc[tte["arm"] == arm, "t_days"] >= g).sum()) for g in grid]
        cells.append([str(x) for x in at_risk])
        colours.append(colour)
    ax.set(xlabel="days since first response", ylabel="relapse-free fraction", ylim=(0, 1.02))
    ax.legend(fontsize=7, ncol=2)
    tab.axis("off")
    if cells:
        t = tab.table(
            cellText=cells,
            rowLabels=arms,
            colLabels=[f"d{g:g}" for g in grid],
            loc="center",
            fontsize=7,
        )
        t.auto_set_font_size(False)
        t.set_fontsize(7)
        for i, c in enumerate(colours):
            t[(i + 1, -1)].get_text().set_color(c)
        tab.set_title("numbers at risk", fontsize=8)
    return fig


def rate_cells(values: dict) -> dict[str, dict[str, str]]:
    """An arm's response, remission and relapse rates as text cells (%): the pooled value and,
    when the trial was replicated, the 5-95 % range over replicate trials in brackets."""
    e = values["endpoints"]
    spread = values.get("replicate_spread", {})

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100.0 * x:.0f}"

    out: dict[str, dict[str, str]] = {}
    for key in ("response_rate", "remission_rate", "relapse_rate"):
        out[key] = {}
        for d, x in e[key].items():
            cell = pct(x)
            s = spread.get(key, {}).get(d)
            if s and s["p05"] is not None:
                cell += f" ({pct(s['p05'])}-{pct(s['p95'])})"
            out[key][d] = cell
    return out


def endpoint_rows(result) -> list[dict]:
    """One flat row per arm for tables: rates in % (with the replicate range, if any), relapse
    among responders, median, exposure."""
    rows = []
    for arm, values in result.endpoints.items():
        e = values["endpoints"]
        cells = rate_cells(values)
        row = {"arm": arm, "n": values["n"]}
        for d, cell in cells["response_rate"].items():
            row[f"response d{d} %"] = cell
        for d, cell in cells["remission_rate"].items():
            row[f"remission d{d} %"] = cell
        row["responders"] = e["responders"]
        for d, cell in cells["relapse_rate"].items():
            row[f"relapse by d{d} %"] = cell
        med = e["median_days_to_relapse"]
        row["median days to relapse"] = med["median"]
        hr = next(iter(e["hazard_ratio_vs"].values()), {}).get("hazard_ratio")
        row["HR vs first arm"] = None if hr is None else round(hr, 2)
        row["infusions / patient"] = round(e["infusions_per_patient"], 1)
        rows.append(row)
    return rows


def _table_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>No arms.</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'—' if v is None else html.escape(str(v))}</td>" for v in r.values())
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e5;border:1px solid #f0b36b;padding:.6em 1em}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.8em}
"""


def _replicate_note(result) -> str:
    if result.replicates <= 1:
        return ""
    per_arm = result.n_patients // result.replicates
    return (
        f" Each rate is pooled over {result.replicates} replicate trials of {per_arm} patients "
        "per arm; each replicate draws its own parameters from the calibration's posterior, and "
        "the 5-95 % range of the replicates' rates is in brackets: what a trial of that size "
        "could see, given patient sampling and parameter uncertainty."
    )


def trial_html(result, *, title: str | None = None) -> str:
    """The HTML report of a :class:`~ketadur.trials.run.TrialResult` (one string)."""
    from ketadur.reports.diagram import plot_cascade
    from ketadur.reports.protocol_diagram import protocol_figure
    from ketadur.trials.run import endpoint_definitions

    p = result.protocol
    figures = {
        "MADRS trajectories (observed: rater noise, missed visits, dropout)": plot_trajectories(
            result
        ),
        "Time to relapse among responders (Kaplan-Meier, 95 % bands)": plot_km(result),
        "Protocol workflow": protocol_figure(p),
        "Signalling cascade (drawn from the model's equations)": plot_cascade(),
    }
    figs = "".join(
        f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
        f"src='data:image/png;base64,{_png(fig)}'>"
        for name, fig in figures.items()
    )
    protocol_text = yaml.safe_dump(p.model_dump(mode="json"), sort_keys=False, width=100)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = {
        "protocol": p.name,
        "patients per arm": result.n_patients,
        "replicates": result.replicates,
        "seed": result.seed,
        "ketadur version": __version__,
        "run time (s)": round(result.runtime_s, 1),
        "generated": when,
    }
    defs = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(d.description or '')}</li>"
        for k, d in endpoint_definitions(result.protocol).items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title or p.title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title or p.title)}</h1>
<p class="warn">{html.escape(DISCLAIMER)}</p>
<p>{html.escape(p.description or p.summary)}</p>
<h2>Run</h2>{_table_html([meta])}
<h2>Endpoints per arm</h2>{_table_html(endpoint_rows(result))}
<p>Rates are among patients observed at that visit (observed cases).{
        _replicate_note(result)
    } Relapse: among patients who
responded in days {result.settings.responder_window_days[0]:g}-{
        result.settings.responder_window_days[1]:g}, timed from their first response
(Kaplan-Meier; censored at dropout or end of follow-up). Definitions:</p><ul>{defs}</ul>
{figs}
<h2>Endpoints (JSON)</h2><pre>{html.escape(json.dumps(result.to_json(), indent=1))}</pre>
<h2>Protocol, exactly as run</h2><pre>{html.escape(protocol_text)}</pre>
<p class="warn">{html.escape(DISCLAIMER)}</p>
</body></html>
"""
