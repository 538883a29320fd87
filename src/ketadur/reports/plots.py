"""Figures of simulated trajectories, returned as matplotlib Figures (no global pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ketadur.engine.reference import SimulationResult

_DISCLAIMER = "Model-based hypothesis for research; not a dosing instruction."


def plot_trajectory(result: SimulationResult, *, title: str | None = None) -> Figure:
    """Four panels: plasma PK and cascade signals (first 12 h after the first dose), synaptic
    states and MADRS (whole simulation)."""
    tb = result.table
    doses = [d["day"] for d in result.provenance.get("regimen", {}).get("doses", [])]
    sessions = [s["day"] for s in result.provenance.get("regimen", {}).get("sessions", [])]
    t0 = doses[0] if doses else 0.0
    early = (tb["t_days"] >= t0) & (tb["t_days"] <= t0 + 0.5)
    hours = (tb.loc[early, "t_days"] - t0) * 24.0

    fig = Figure(figsize=(11, 8), layout="constrained")
    ax = fig.subplots(2, 2)
    a = ax[0, 0]
    a.plot(hours, tb.loc[early, "plasma_ketamine_ng_per_ml"], label="ketamine (S+R)")
    a.plot(hours, tb.loc[early, "plasma_norketamine_ng_per_ml"], label="norketamine")
    a.set(xlabel="hours after first dose", ylabel="plasma ng/mL", title="Pharmacokinetics")
    a.legend()
    a = ax[0, 1]
    for name in ("nmda_occupancy", "glutamate", "bdnf", "erk", "dusp6", "mtorc1"):
        a.plot(hours, tb.loc[early, name], label=name)
    a.set(xlabel="hours after first dose", ylabel="relative level", title="Signalling cascade")
    a.legend(fontsize=8)
    a = ax[1, 0]
    for name in ("potentiation", "structural", "stabilised", "consolidated", "tolerance"):
        a.plot(tb["t_days"], tb[name], label=name)
    a.set(xlabel="days", ylabel="state", title="Synaptic and durability states")
    a.legend(fontsize=8)
    a = ax[1, 1]
    a.plot(tb["t_days"], tb["madrs"], color="k")
    _mark_events(a, doses, sessions)
    a.set(xlabel="days", ylabel="MADRS", ylim=(0, 60), title="Depression score")
    fig.suptitle(title or result.provenance.get("regimen", {}).get("name", "simulation"))
    fig.text(0.5, 0.0, _DISCLAIMER, ha="center", va="bottom", fontsize=8, color="0.4")
    return fig


def _mark_events(ax, doses: Sequence[float], sessions: Sequence[float]) -> None:
    if doses:
        ax.plot(doses, np.full(len(doses), 58.0), "v", color="tab:red", label="infusion")
    if sessions:
        ax.plot(sessions, np.full(len(sessions), 55.0), "|", color="tab:green", label="session")
    if doses or sessions:
        ax.legend(fontsize=8, loc="lower right")
