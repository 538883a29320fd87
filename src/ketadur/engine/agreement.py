"""Agreement of the fast population engine with the reference engine, patient by patient.

Used by the test suite (a small sample) and by ``benchmarks/agreement.py`` (every library protocol,
200 patients). The criterion is the issue's: relative difference within 1e-3, or within 0.05 MADRS
points (1e-6 for the dimensionless synaptic states) in absolute terms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketadur.engine.population import is_adaptive, patient_seed, simulate_population
from ketadur.engine.reference import simulate
from ketadur.population.table import patient_of, validate_population
from ketadur.protocols.execute import run_protocol
from ketadur.protocols.schedule import fixed_regimen
from ketadur.protocols.schema import Protocol

COMPARED = ("madrs", "potentiation", "structural", "stabilised", "consolidated")
RELATIVE_TOLERANCE = 1e-3
ABSOLUTE_TOLERANCE = {"madrs": 0.05}
"""Absolute tolerance per output (1e-6 for those not listed)."""


def compare_arm(
    protocol: Protocol, arm: str, population: pd.DataFrame, *, seed: int = 0
) -> pd.DataFrame:
    """Per patient and output: the largest absolute and relative difference between the fast and
    the reference engine over daily outputs, and whether it is within tolerance."""
    df = validate_population(population)
    fast = pd.concat(simulate_population(protocol, df, arm=arm, outputs=COMPARED, seed=seed))
    return compare_with_reference(protocol, arm, df, fast, seed=seed)


def compare_with_reference(
    protocol: Protocol, arm: str, population: pd.DataFrame, fast: pd.DataFrame, *, seed: int = 0
) -> pd.DataFrame:
    """:func:`compare_arm` for daily outputs ``fast`` (columns ``subject_id``, ``t_days`` and
    :data:`COMPARED`) computed elsewhere, on a GPU say."""
    df = validate_population(population)
    chosen = protocol.arm(arm)
    days = np.arange(0.0, np.floor(protocol.duration_days) + 1.0)
    regimen = fixed_regimen(protocol, chosen)
    rows = []
    for k, (_, row) in enumerate(df.iterrows()):
        patient = patient_of(row)
        if is_adaptive(chosen):
            run = run_protocol(protocol, patient, arm=arm, seed=patient_seed(seed, k))
            table = run.result.table
            t = np.round(table["t_days"].to_numpy(), 9)
            ref = table.iloc[np.searchsorted(t, days)]
        else:
            ref = simulate(
                regimen, patient, t_end_days=protocol.duration_days, output_days=days
            ).table
        mine = fast[fast["subject_id"] == row["subject_id"]]
        for name in COMPARED:
            a, b = ref[name].to_numpy(), mine[name].to_numpy()
            diff = np.abs(a - b)
            rel = diff / np.maximum(np.abs(a), 1e-300)
            tol_abs = ABSOLUTE_TOLERANCE.get(name, 1e-6)
            ok = bool(np.all((diff <= tol_abs) | (rel <= RELATIVE_TOLERANCE)))
            rows.append(
                {
                    "protocol": protocol.name,
                    "arm": arm,
                    "subject_id": row["subject_id"],
                    "output": name,
                    "max_abs_diff": float(diff.max()),
                    "max_rel_diff": float(np.where(diff <= tol_abs, 0.0, rel).max()),
                    "within_tolerance": ok,
                }
            )
    return pd.DataFrame(rows)


def summarise(result: pd.DataFrame) -> dict:
    """One arm's rows of :func:`compare_arm`: the worst relative difference, the worst MADRS
    difference (points) and whether every patient and output is within tolerance."""
    return {
        "worst_rel": float(result["max_rel_diff"].max()),
        "worst_madrs_abs": float(result.query("output == 'madrs'")["max_abs_diff"].max()),
        "all_within": bool(result["within_tolerance"].all()),
    }
