"""Three named regimens for single-patient simulation (``ketadur simulate --regimen``).

Single 0.5 mg/kg infusion; six infusions over two weeks; six infusions plus weekly CBT starting the
day after the first infusion (seed Protocol 2: CBT begins within 24-48 h of the first infusion).
``ketadur demo`` itself is an in-silico trial (:mod:`ketadur.cli_trial`).
"""

from __future__ import annotations

from ketadur.regimen import Regimen, single_infusion, six_infusions, weekly_sessions

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
