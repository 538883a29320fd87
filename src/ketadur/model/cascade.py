"""The signalling cascade from NMDA receptor block to mTORC1 (DESIGN section 3).

NMDA occupancy (S/R-ketamine, S/R-norketamine) -> glutamate surge (disinhibition, reduced by
tolerance) -> AMPA throughput (raised by functional potentiation) -> BDNF release (Val66Met,
antidepressant, exercise, and potentiated synapses) -> TrkB activation (absent after TrkB deletion)
-> ERK, deactivated by DUSP6 which ERK itself induces (a DUSP6 inhibitor blocks that phosphatase)
-> mTORC1 (TrkB-PI3K/Akt and ERK).

Each quantity is one small function whose argument names are its inputs. Algebraic signals return a
value; states return a time derivative (per hour). :mod:`ketadur.model.system` evaluates them and
:mod:`ketadur.reports.diagram` draws the cascade from these very signatures, so the figure cannot
drift from the equations. All concentrations are unbound brain concentrations in uM; signals are
dimensionless, relative to the untreated patient (glutamate, ERK: excess over baseline; BDNF,
DUSP6: 1 at baseline).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable

from ketadur.model.parameters import LN2, ParameterSet


class CascadeConstants(NamedTuple):
    """Cascade constants for one patient, rates per hour."""

    ki_s: float
    ki_r: float
    ki_s_nk: float
    ki_r_nk: float
    k_glutamate: float
    glutamate_gain: float
    k_bdnf: float
    release_gain: float
    antidepressant_gain: float
    synaptic_feedback: float
    exercise_gain: float
    trkb_present: float
    erk_act: float
    erk_deact: float
    k_dusp6: float
    dusp6_gain: float
    dusp6_block: float
    mtor_erk_weight: float
    mtor_half: float
    mtor_hill: float

    @classmethod
    def from_params(
        cls, p: ParameterSet, *, met_alleles: int, trkb_deleted: bool
    ) -> CascadeConstants:
        """Per-hour constants; the Val66Met genotype scales BDNF release.

        Works on scalars or, for a population, on arrays (one value per patient)."""
        release = p["bdnf_release_gain"] * np.maximum(
            0.0, 1.0 - p["val66met_release_reduction_per_allele"] * met_alleles
        )
        return cls(
            ki_s=p["ki_s_ketamine_um"],
            ki_r=p["ki_r_ketamine_um"],
            ki_s_nk=p["ki_s_norketamine_um"],
            ki_r_nk=p["ki_r_norketamine_um"],
            k_glutamate=LN2 / (p["glutamate_half_life_min"] / 60.0),
            glutamate_gain=p["glutamate_gain"],
            k_bdnf=LN2 / p["bdnf_half_life_h"],
            release_gain=release,
            antidepressant_gain=p["antidepressant_bdnf_gain"],
            synaptic_feedback=p["bdnf_synaptic_feedback"],
            exercise_gain=p["exercise_bdnf_gain_per_session_per_week"],
            trkb_present=1.0 - 1.0 * trkb_deleted,
            erk_act=p["erk_activation_per_h"],
            erk_deact=p["erk_deactivation_per_h"],
            k_dusp6=LN2 / p["dusp6_half_life_h"],
            dusp6_gain=p["dusp6_induction_gain"],
            dusp6_block=p["dusp6_inhibitor_block_fraction"],
            mtor_erk_weight=p["mtor_erk_weight"],
            mtor_half=p["mtor_half_activation"],
            mtor_hill=p["mtor_hill"],
        )


# ------------------------------------------------------------------------------ algebraic signals


def nmda_occupancy(
    s_ketamine: float,
    r_ketamine: float,
    s_norketamine: float,
    r_norketamine: float,
    k: CascadeConstants,
) -> float:
    """Fraction of NMDA receptors blocked: competitive sum of four ligands (unbound uM / Ki)."""
    # (1 / Ki) is a constant of the patient, so a compiled engine computes it once
    u = (
        s_ketamine * (1.0 / k.ki_s)
        + r_ketamine * (1.0 / k.ki_r)
        + s_norketamine * (1.0 / k.ki_s_nk)
        + r_norketamine * (1.0 / k.ki_r_nk)
    )
    return u / (1.0 + u)


def ampa_throughput(glutamate: float, potentiation: float, k: CascadeConstants) -> float:
    """AMPA receptor drive: the glutamate surge times AMPA availability (raised by potentiation)."""
    return max(glutamate, 0.0) * (1.0 + potentiation)


def trkb_activation(bdnf: float, k: CascadeConstants) -> float:
    """TrkB signalling above baseline; zero when TrkB is deleted."""
    return k.trkb_present * (bdnf - 1.0)


def mtorc1_activity(trkb: float, erk: float, k: CascadeConstants) -> float:
    """mTORC1 activation (0-1) by TrkB (PI3K/Akt) and ERK: a steep sigmoid, so that the burst after
    a dose triggers synaptic protein synthesis while low-level tonic signalling does not."""
    x = _mtorc1_drive(trkb, erk, k)
    if k.mtor_hill == math.floor(k.mtor_hill) and k.mtor_hill <= 8.0:
        # An integer Hill coefficient (the registry's 4) is multiplied out: a general power is
        # the costliest operation in the fast engine's right-hand side.
        r = integer_power(x, k.mtor_hill)
    else:
        r = x**k.mtor_hill
    return r / (1.0 + r)


def mtorc1_activity_integer_hill(trkb: float, erk: float, k: CascadeConstants) -> float:
    """:func:`mtorc1_activity` for a Hill coefficient known to be an integer in [0, 8]: without
    the general power's branch, so that a compiler can vectorise it across patients (the fast
    engine's lanes)."""
    r = integer_power(_mtorc1_drive(trkb, erk, k), k.mtor_hill)
    return r / (1.0 + r)


@register_jitable(inline="always")
def _mtorc1_drive(trkb: float, erk: float, k: CascadeConstants) -> float:
    """TrkB plus weighted ERK drive relative to the half-activating drive (dimensionless)."""
    drive = max(trkb, 0.0) + k.mtor_erk_weight * max(erk, 0.0)
    return drive * (1.0 / k.mtor_half)


@register_jitable
def integer_power(x: float, n: float) -> float:
    """``x ** n`` for an integer ``n`` in [0, 8], as the product ``((x * x) * x) ...`` and
    without branches (each factor is selected), so that it vectorises."""
    r = 1.0
    r = r * x if n >= 1.0 else r
    r = r * x if n >= 2.0 else r
    r = r * x if n >= 3.0 else r
    r = r * x if n >= 4.0 else r
    r = r * x if n >= 5.0 else r
    r = r * x if n >= 6.0 else r
    r = r * x if n >= 7.0 else r
    return r * x if n >= 8.0 else r


# ------------------------------------------------------------------------------ state derivatives


def d_glutamate(glutamate: float, occupancy: float, tolerance: float, k: CascadeConstants) -> float:
    """Glutamate surge follows NMDA block (interneuron disinhibition); tolerance blunts it."""
    target = k.glutamate_gain * occupancy / (1.0 + tolerance)
    return k.k_glutamate * (target - glutamate)


def d_bdnf(
    bdnf: float,
    ampa: float,
    structural: float,
    exercise_change: float,
    oral_antidepressant: float,
    k: CascadeConstants,
) -> float:
    """Activity-dependent BDNF release from AMPA drive (raised by a background oral antidepressant,
    ``oral_antidepressant`` = 1 while taken) and potentiated synapses, plus exercise."""
    target = (
        1.0
        + k.release_gain * (1.0 + k.antidepressant_gain * oral_antidepressant) * ampa
        + k.synaptic_feedback * structural
        + k.exercise_gain * exercise_change
    )
    return k.k_bdnf * (target - bdnf)


def d_erk(
    erk: float, trkb: float, dusp6: float, dusp6_inhibitor: float, k: CascadeConstants
) -> float:
    """ERK phosphorylation by TrkB minus dephosphorylation by (unblocked) DUSP6."""
    phosphatase = dusp6 * (1.0 - k.dusp6_block * dusp6_inhibitor)
    return k.erk_act * trkb - k.erk_deact * phosphatase * erk


def d_dusp6(dusp6: float, erk: float, k: CascadeConstants) -> float:
    """DUSP6 is induced by ERK (negative feedback) and turns over."""
    return k.k_dusp6 * (max(0.0, 1.0 + k.dusp6_gain * erk) - dusp6)
