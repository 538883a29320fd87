"""Reference engine: SciPy's adaptive stiff solver, restarted at every discontinuity.

Every dose, infusion start and stop, therapy session, adjunct window edge and lifestyle change is a
breakpoint known in advance (like diffrax's ``jump_ts``): the solver integrates each smooth segment
on its own and jumps are applied exactly at their times, never approximated by short pulses.
This engine is the yardstick the fast population engine is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from ketadur import __version__
from ketadur.errors import KetadurInputError
from ketadur.model.patient import TYPICAL_PATIENT, Patient
from ketadur.model.system import (
    INPUT_NAMES,
    OUTPUTS,
    STATE_NAMES,
    CompiledModel,
    Schedule,
    compile_model,
    compile_schedule,
    model_hash,
)
from ketadur.regimen import Regimen


@dataclass(frozen=True, slots=True)
class SolverSettings:
    """Tolerances and method of the reference solver (SciPy ``solve_ivp``)."""

    rtol: float = 1e-7
    atol: float = 1e-10
    method: Literal["LSODA", "BDF", "Radau"] = "LSODA"

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not (0.0 < value < 1.0):
                raise KetadurInputError(f"solver.{name}", "must lie in (0, 1)", value)


@dataclass(frozen=True)
class SimulationResult:
    """Trajectories of one patient under one regimen.

    ``table`` is wide (one row per output time, column ``t_days`` then every output);
    ``states`` holds the raw state vector at the same times. ``status`` is ``"success"`` or
    ``"failed"`` (with ``message``); ``provenance`` records what produced the result.
    """

    table: pd.DataFrame
    states: pd.DataFrame
    status: Literal["success", "failed"]
    message: str
    provenance: dict = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Long format: ``t_days, variable, value, unit``."""
        long = self.table.melt(id_vars="t_days", var_name="variable", value_name="value")
        long["unit"] = long["variable"].map(OUTPUTS)
        return long

    def at(self, t_days: float, output: str = "madrs") -> float:
        """``output`` at the stored time nearest to ``t_days``."""
        i = int(np.argmin(np.abs(self.table["t_days"].to_numpy() - t_days)))
        return float(self.table[output].iloc[i])


def default_output_days(
    regimen: Regimen,
    t_end_days: float,
    *,
    t_start_days: float = 0.0,
    step_hours: float = 1.0,
    refine_doses: bool = True,
) -> NDArray[np.float64]:
    """A ``step_hours`` grid over ``[t_start_days, t_end_days]`` (both ends included), refined to
    2 minutes for the 8 hours after each dose (to resolve PK peaks) unless ``refine_doses`` is
    False."""
    step = step_hours / 24.0
    first = np.ceil(t_start_days / step - 1e-9) * step
    grids = [np.arange(first, t_end_days + 1e-9, step), np.array([t_start_days, t_end_days])]
    for dose in regimen.doses if refine_doses else ():
        if dose.day < t_end_days and dose.day + 8.0 / 24.0 > t_start_days:
            grids.append(dose.day + np.arange(0.0, 8.0 * 60.0 + 1e-9, 2.0) / 1440.0)
    t = np.unique(np.round(np.concatenate(grids), 9))
    return t[(t >= t_start_days) & (t <= t_end_days)]


def simulate(
    regimen: Regimen,
    patient: Patient = TYPICAL_PATIENT,
    *,
    t_end_days: float = 56.0,
    output_days: NDArray[np.float64] | list[float] | None = None,
    solver: SolverSettings = SolverSettings(),
) -> SimulationResult:
    """Simulate ``patient`` under ``regimen`` from day 0 to ``t_end_days``.

    Parameters
    ----------
    regimen
        What is given and when (days).
    patient
        Covariates and parameters; the typical patient by default.
    t_end_days
        End of the simulation, days (0 < t_end_days <= 3650).
    output_days
        Times (days) at which outputs are reported; default :func:`default_output_days`.
    solver
        Tolerances and method.

    Returns
    -------
    SimulationResult
        With ``status="failed"`` and a message if the solver fails (nothing is raised).

    Raises
    ------
    KetadurInputError
        For an invalid time span or output times.

    Examples
    --------
    >>> from ketadur.regimen import single_infusion
    >>> r = simulate(single_infusion(), t_end_days=14)
    >>> r.at(1.0) < r.at(0.0)
    True
    """
    if not (0.0 < t_end_days <= 3650.0):
        raise KetadurInputError("t_end_days", "must lie in (0, 3650]", t_end_days)
    if output_days is None:
        t_out = default_output_days(regimen, t_end_days)
    else:
        t_out = np.unique(np.round(np.asarray(output_days, dtype=float), 9))
        if t_out.size == 0 or t_out[0] < 0.0 or t_out[-1] > t_end_days:
            raise KetadurInputError(
                "output_days", f"must be non-empty and within [0, {t_end_days}]", output_days
            )
    model = compile_model(patient)
    span = integrate_span(
        model,
        compile_schedule(model, regimen),
        model.initial_state(),
        0.0,
        t_end_days * 24.0,
        t_out * 24.0,
        solver,
    )
    y_out, u_out, status, message = span.y_out, span.u_out, span.status, span.message
    outputs = model.outputs(y_out, u_out)
    table = pd.DataFrame({"t_days": t_out, **outputs})
    states = pd.DataFrame(y_out.T, columns=list(STATE_NAMES))
    states.insert(0, "t_days", t_out)
    provenance = {
        "ketadur_version": __version__,
        "engine": "reference",
        "solver": {"method": solver.method, "rtol": solver.rtol, "atol": solver.atol},
        "model_hash": model_hash(patient),
        "regimen": regimen.model_dump(mode="json"),
        "patient": patient.subject_id,
    }
    return SimulationResult(table, states, status, message, provenance)


@dataclass(frozen=True)
class Span:
    """States and inputs at requested times within one integration span, and the state at its end
    (the left limit: jumps due exactly at the end are not yet applied)."""

    y_out: NDArray[np.float64]
    u_out: NDArray[np.float64]
    y_end: NDArray[np.float64]
    status: Literal["success", "failed"]
    message: str
    outputs: NDArray[np.float64] | None = None
    """Every output of :data:`~ketadur.model.system.OUTPUTS` at the requested times (rows in
    that order), when the engine records them as it integrates (the fast engine); else None."""


def integrate_span(
    model: CompiledModel,
    schedule: Schedule,
    y_start: NDArray[np.float64],
    t_start_h: float,
    t_end_h: float,
    t_out_h: NDArray[np.float64],
    solver: SolverSettings,
) -> Span:
    """Integrate from ``t_start_h`` (jumps due then are applied first) to ``t_end_h``.

    Outputs at ``t_out_h`` (within ``[t_start_h, t_end_h]``) are right-continuous except at
    ``t_end_h`` itself, which is the left limit. Engines and the adaptive protocol runner call this
    between decision points; a schedule may change between calls.
    """
    n_in = len(INPUT_NAMES)
    y_out = np.full((len(STATE_NAMES), t_out_h.size), np.nan)
    u_out = np.zeros((n_in, t_out_h.size))
    bps = schedule.breakpoints_h
    # The segment in force at t_start, then every breakpoint inside (t_start, t_end).
    first = max(i for i, t in enumerate(bps) if t <= t_start_h)
    seg = [first, *(i for i, t in enumerate(bps) if t_start_h < t < t_end_h)]
    y = y_start.copy()
    for n, i in enumerate(seg):
        t0 = max(bps[i], t_start_h)
        if bps[i] == t0:
            for jump in schedule.jumps[i]:
                y = model.apply_jump(y, jump)
        u = schedule.inputs[i]
        last = n + 1 == len(seg)
        t1 = t_end_h if last else bps[seg[n + 1]]
        mask = (t_out_h >= t0) & ((t_out_h <= t1) if last else (t_out_h < t1))
        u_out[:, mask] = u[:, None]
        if t1 <= t0:
            y_out[:, mask] = y[:, None]
            continue
        t_eval = t_out_h[mask]
        n_keep = t_eval.size
        if n_keep == 0 or t_eval[-1] < t1:
            t_eval = np.append(t_eval, t1)
        sol = solve_ivp(
            model.rhs,
            (t0, t1),
            y,
            method=solver.method,
            t_eval=t_eval,
            args=(u,),
            rtol=solver.rtol,
            atol=solver.atol,
            first_step=min(1e-3, (t1 - t0) / 2.0),
        )
        if not sol.success:
            msg = f"solver failed at t={t0 / 24.0:.4f} d: {sol.message}"
            return Span(y_out, u_out, y, "failed", msg)
        y_out[:, mask] = sol.y[:, :n_keep]
        y = sol.y[:, -1]
    return Span(y_out, u_out, y, "success", "")
