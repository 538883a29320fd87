"""Single-trajectory summaries: MADRS at given days and time to loss of response.

These are deliberately simple, one-patient quantities for the foundation demo and the model's
phenomenon tests. Trial endpoints with each trial's own definitions live in ``ketadur.trials``.
"""

from __future__ import annotations

import math

import numpy as np

from ketadur.engine.reference import SimulationResult


def madrs_at(result: SimulationResult, days: list[float]) -> dict[float, float]:
    """MADRS at each of ``days`` (nearest stored time)."""
    return {d: result.at(d, "madrs") for d in days}


def day_of_loss_of_response(
    result: SimulationResult,
    *,
    baseline_madrs: float,
    after_day: float = 0.0,
    fraction: float = 0.5,
) -> float:
    """First day after ``after_day`` on which MADRS returns above ``fraction`` x baseline.

    Counted from day 0. Returns ``nan`` if MADRS never fell to or below that level after
    ``after_day`` (no response to lose) and ``inf`` if it had not returned by the end of the
    simulation.
    """
    t = result.table["t_days"].to_numpy()
    m = result.table["madrs"].to_numpy()
    threshold = fraction * baseline_madrs
    later = t > after_day
    responded = later & (m <= threshold)
    if not responded.any():
        return math.nan
    first_response = t[responded][0]
    lost = (t > first_response) & (t > after_day) & (m > threshold)
    return float(t[lost][0]) if lost.any() else math.inf


def benefit_half_time(result: SimulationResult, *, baseline_madrs: float) -> float:
    """Days from the largest MADRS improvement until the improvement has halved (``inf`` if not)."""
    t = result.table["t_days"].to_numpy()
    improvement = baseline_madrs - result.table["madrs"].to_numpy()
    i = int(np.argmax(improvement))
    halved = (t > t[i]) & (improvement < 0.5 * improvement[i])
    return float(t[halved][0] - t[i]) if halved.any() else math.inf
