"""The foundation demo: one typical patient under three regimens.

Single 0.5 mg/kg infusion; six infusions over two weeks; six infusions plus weekly CBT starting the
day after the first infusion (seed Protocol 2: CBT begins within 24-48 h of the first infusion).
Later issues replace this with an in-silico trial on a virtual population.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketadur.engine.reference import SimulationResult, simulate
from ketadur.model.patient import TYPICAL_PATIENT, Patient
from ketadur.regimen import Regimen, single_infusion, six_infusions, weekly_sessions
from ketadur.summaries import day_of_loss_of_response, madrs_at

DEMO_DAYS = (1.0, 7.0, 14.0, 28.0, 56.0)
CBT_WEEKS = 12
"""Weekly CBT for 12 weeks (seed Protocol 2: a structured course of 12-14 sessions)."""


def demo_regimens() -> tuple[Regimen, ...]:
    """The three regimens the demo compares."""
    six = six_infusions()
    return (
        single_infusion(),
        six,
        six.with_sessions(weekly_sessions(1.0, CBT_WEEKS), name="six infusions + weekly CBT"),
    )


@dataclass(frozen=True)
class DemoRow:
    """One regimen's summary in the demo table."""

    regimen: str
    madrs_by_day: dict[float, float]
    day_response_lost: float


def run_demo(
    patient: Patient = TYPICAL_PATIENT, *, t_end_days: float = 120.0
) -> tuple[list[DemoRow], list[SimulationResult]]:
    """Simulate the demo regimens; the summary rows and the full results."""
    rows, results = [], []
    for regimen in demo_regimens():
        result = simulate(regimen, patient, t_end_days=t_end_days)
        rows.append(
            DemoRow(
                regimen=regimen.name,
                madrs_by_day=madrs_at(result, list(DEMO_DAYS)),
                day_response_lost=day_of_loss_of_response(
                    result, baseline_madrs=patient.baseline_madrs
                ),
            )
        )
        results.append(result)
    return rows, results
