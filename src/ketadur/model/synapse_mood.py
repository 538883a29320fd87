"""Synaptic potentiation, its durability, psychotherapy consolidation, and the symptoms that follow.

States (dimensionless unless stated):

- ``potentiation``: fast functional potentiation (AMPA insertion), built by mTORC1, hours-days;
- ``structural``: structural synaptic state (spines), built from potentiation, days-weeks; its
  homeostatic decay is slowed by sustained ERK and sped up by homeostatic counter-regulation, age,
  chronic stress and lost sleep, and slowed by exercise;
- ``stabilised``: structural synapses that have matured (weeks); maturation is sped up by ERK, so
  repeated doses and DUSP6 inhibition leave longer-lasting change;
- ``homeostasis``: counter-regulation built by large glutamate surges (higher doses: stronger but
  shorter-lived effects);
- ``tolerance``: built by NMDA occupancy, scaled by the patient's propensity; blunts the surge;
- ``consolidated``: gains made in psychotherapy, built at each session in proportion to the
  plasticity present then (the post-infusion window), decaying over months;
- ``situational``: situational depressive load in MADRS points, resolving by itself;
- ``acute``: the acute response to NMDA blockade (hours): rapid BDNF translation while the
  receptor is blocked at rest, acting through TrkB before any synapse forms; it carries the first
  hours' relief;
- ``expectancy``: the placebo response, built during the hour of each administration perceived
  as treatment (an inert placebo counts for less: its blind is weak) and fading over days; it
  relieves symptoms through the same saturating relief signal as the synaptic states.

Outputs: MADRS (0-60), CADSS (dissociation), systolic blood pressure, plasma BDNF.
Rates are per hour, like the cascade.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ketadur.model.parameters import LN2, ParameterSet

EXPECTANCY_CUE_H = 1.0
"""Hours from the start of an administration during which expectancy builds: the treatment visit
(assumed; the 24-h targets cannot tell this from any other time of a few hours). One full cue
raises expectancy by ``expectancy_gain_per_administration`` of the room left below 1."""


class SynapseConstants(NamedTuple):
    """Synaptic, therapy and symptom constants for one patient, rates per hour."""

    k_p_form: float
    k_p_decay: float
    k_s_form: float
    k_s_decay: float
    patient_decay_factor: float
    k_stab: float
    erk_stab_gain: float
    k_stab_decay: float
    w_m: float
    erk_protection: float
    homeostasis_gain: float
    k_h_build: float
    k_h_decay: float
    k_tol_build: float
    k_tol_decay: float
    k_c_decay: float
    k_z_decay: float
    sleep_gain: float
    exercise_decay_reduction: float
    therapy_gain: float
    therapy_basal: float
    mindfulness_weight: float
    k_e_build: float
    k_e_decay: float
    inert_placebo_weight: float
    k_a_form: float
    k_a_decay: float
    w_a: float
    relief_hill: float
    core_madrs: float
    max_relief: float
    relief_half: float
    relief_half_pow: float  # relief_half ** relief_hill, once per patient
    w_p: float
    w_s: float
    w_c: float
    cadss_emax: float
    cadss_o50: float
    cadss_hill: float
    cadss_o50_pow: float  # cadss_o50 ** cadss_hill, once per patient
    sbp_baseline: float
    sbp_emax: float
    sbp_ec50: float
    bdnf_plasma_baseline: float
    bdnf_plasma_coupling: float

    @classmethod
    def from_params(
        cls,
        p: ParameterSet,
        *,
        age_years: float,
        chronic_stress: float,
        tolerance_propensity: float,
        baseline_madrs: float,
        situational_madrs: float,
        situational_half_life_days: float,
        baseline_sbp_mmhg: float,
    ) -> SynapseConstants:
        """Per-hour constants; age and chronic stress set the patient's baseline decay speed.

        Works on scalars or, for a population, on arrays (one value per patient)."""
        age_factor = np.maximum(
            0.2, 1.0 + p["age_decay_gain_per_decade"] * (age_years - 40.0) / 10.0
        )
        stress_factor = 1.0 + p["chronic_stress_decay_gain"] * chronic_stress
        return cls(
            k_p_form=p["potentiation_formation_per_h"],
            k_p_decay=LN2 / p["potentiation_half_life_h"],
            k_s_form=p["structural_formation_per_day"] / 24.0,
            k_s_decay=LN2 / (p["structural_half_life_days"] * 24.0),
            patient_decay_factor=age_factor * stress_factor,
            k_stab=p["stabilisation_per_day"] / 24.0,
            erk_stab_gain=p["erk_stabilisation_gain"],
            k_stab_decay=LN2 / (p["stabilised_half_life_days"] * 24.0),
            w_m=p["relief_weight_stabilised"],
            erk_protection=p["erk_decay_protection"],
            homeostasis_gain=p["homeostasis_gain"],
            k_h_build=p["homeostasis_build_per_h"],
            k_h_decay=LN2 / (p["homeostasis_half_life_days"] * 24.0),
            k_tol_build=p["tolerance_build_per_h"] * tolerance_propensity,
            k_tol_decay=LN2 / (p["tolerance_half_life_days"] * 24.0),
            k_c_decay=LN2 / (p["consolidation_half_life_days"] * 24.0),
            k_z_decay=LN2 / (situational_half_life_days * 24.0),
            sleep_gain=p["sleep_deficit_decay_gain_per_h"],
            exercise_decay_reduction=p["exercise_decay_reduction_per_session_per_week"],
            therapy_gain=p["therapy_consolidation_gain"],
            therapy_basal=p["therapy_basal_plasticity"],
            mindfulness_weight=p["mindfulness_session_weight"],
            k_e_build=-np.log1p(-p["expectancy_gain_per_administration"]) / EXPECTANCY_CUE_H,
            k_e_decay=LN2 / (p["expectancy_half_life_days"] * 24.0),
            inert_placebo_weight=p["inert_placebo_expectancy_weight"],
            k_a_form=p["acute_formation_per_h"],
            k_a_decay=LN2 / p["acute_half_life_h"],
            w_a=p["relief_weight_acute"],
            relief_hill=p["relief_hill"],
            core_madrs=baseline_madrs - situational_madrs,
            max_relief=1.0 - p["madrs_refractory_fraction"],
            relief_half=p["relief_half_max"],
            relief_half_pow=p["relief_half_max"] ** p["relief_hill"],
            w_p=p["relief_weight_potentiation"],
            w_s=p["relief_weight_structural"],
            w_c=p["relief_weight_consolidated"],
            cadss_emax=p["cadss_emax_points"],
            cadss_o50=p["cadss_occupancy50"],
            cadss_hill=p["cadss_hill"],
            cadss_o50_pow=p["cadss_occupancy50"] ** p["cadss_hill"],
            sbp_baseline=baseline_sbp_mmhg,
            sbp_emax=p["sbp_emax_mmhg"],
            sbp_ec50=p["sbp_ec50_ng_per_ml"],
            bdnf_plasma_baseline=p["plasma_bdnf_baseline_ng_per_ml"],
            bdnf_plasma_coupling=p["plasma_bdnf_coupling"],
        )


# ------------------------------------------------------------------------------ algebraic signals


def structural_decay_rate(
    erk: float,
    homeostasis: float,
    sleep_deficit_change: float,
    exercise_change: float,
    k: SynapseConstants,
) -> float:
    """Decay rate of the structural state relative to its baseline (multiplier): homeostasis,
    age, stress and lost sleep speed it; sustained ERK and exercise slow it."""
    lifestyle = max(0.2, 1.0 + k.sleep_gain * sleep_deficit_change) * max(
        0.2, 1.0 - k.exercise_decay_reduction * exercise_change
    )
    return (
        k.patient_decay_factor
        * lifestyle
        * (1.0 + k.homeostasis_gain * homeostasis)
        / (1.0 + k.erk_protection * max(erk, 0.0))
    )


def relief(
    acute: float,
    potentiation: float,
    structural: float,
    stabilised: float,
    consolidated: float,
    expectancy: float,
    k: SynapseConstants,
) -> float:
    """Fraction of the core MADRS removed by the acute, synaptic, consolidated and expectancy
    states (saturating, so a placebo response adds less on top of a large drug response; with a
    Hill coefficient above 1, switch-like)."""
    r = (
        k.w_a * acute
        + k.w_p * potentiation
        + k.w_s * structural
        + k.w_m * stabilised
        + k.w_c * consolidated
        + expectancy
    )
    rn = max(r, 0.0) ** k.relief_hill  # states may dip below 0 by round-off
    return k.max_relief * rn / (k.relief_half_pow + rn)


def madrs(relief_fraction: float, situational: float, k: SynapseConstants) -> float:
    """MADRS total (0-60): the core severity less relief, plus situational load."""
    return min(60.0, max(0.0, k.core_madrs * (1.0 - relief_fraction) + situational))


def cadss(occupancy: float, k: SynapseConstants) -> float:
    """Dissociation (CADSS total) as a sigmoid function of NMDA occupancy."""
    o = occupancy**k.cadss_hill
    return k.cadss_emax * o / (k.cadss_o50_pow + o)


def sbp(plasma_ketamine_ng_per_ml: float, k: SynapseConstants) -> float:
    """Systolic blood pressure (mmHg): baseline plus an Emax sympathomimetic rise."""
    c = plasma_ketamine_ng_per_ml
    return k.sbp_baseline + k.sbp_emax * c / (k.sbp_ec50 + c)


def plasma_bdnf(bdnf: float, k: SynapseConstants) -> float:
    """Plasma BDNF (ng/mL): baseline plus a fraction of the relative brain BDNF rise."""
    return k.bdnf_plasma_baseline * (1.0 + k.bdnf_plasma_coupling * (bdnf - 1.0))


# ------------------------------------------------------------------------------ state derivatives


def d_acute(acute: float, occupancy: float, trkb_present: float, k: SynapseConstants) -> float:
    """The acute response builds while NMDA receptors are blocked (saturating at 1) and fades
    within hours of the block ending. The rapidly translated BDNF acts through TrkB, so TrkB
    deletion abolishes it (``trkb_present`` 0)."""
    return k.k_a_form * trkb_present * occupancy * (1.0 - acute) - k.k_a_decay * acute


def d_potentiation(potentiation: float, mtorc1: float, k: SynapseConstants) -> float:
    """Functional potentiation is built by mTORC1 (saturating at 1) and decays in hours-days."""
    return k.k_p_form * mtorc1 * (1.0 - potentiation) - k.k_p_decay * potentiation


def d_structural(
    structural: float, potentiation: float, decay_rate: float, k: SynapseConstants
) -> float:
    """Structural synaptic state grows from potentiation (saturating at 1) and decays."""
    return k.k_s_form * potentiation * (1.0 - structural) - k.k_s_decay * decay_rate * structural


def d_stabilised(
    stabilised: float, structural: float, erk: float, decay_rate: float, k: SynapseConstants
) -> float:
    """New structural synapses mature into stabilised ones and slowly decay.

    Maturation is cooperative (needs sustained structural change, hence the square: a series of
    doses stabilises far more than one) and faster with ERK activity."""
    maturation = k.k_stab * (1.0 + k.erk_stab_gain * max(erk, 0.0)) * structural**2
    return maturation * (1.0 - stabilised) - k.k_stab_decay * decay_rate * stabilised


def d_homeostasis(homeostasis: float, glutamate: float, k: SynapseConstants) -> float:
    """Counter-regulation builds with the glutamate surge and relaxes over days."""
    return k.k_h_build * max(glutamate, 0.0) - k.k_h_decay * homeostasis


def d_tolerance(tolerance: float, occupancy: float, k: SynapseConstants) -> float:
    """Tolerance builds with NMDA occupancy (scaled by propensity) and wears off over weeks."""
    return k.k_tol_build * occupancy - k.k_tol_decay * tolerance


def d_consolidated(consolidated: float, k: SynapseConstants) -> float:
    """Psychotherapy gains fade slowly (sessions add to them as jumps)."""
    return -k.k_c_decay * consolidated


def d_situational(situational: float, k: SynapseConstants) -> float:
    """Situational depression resolves by itself."""
    return -k.k_z_decay * situational


def d_expectancy(expectancy: float, expectancy_cue: float, k: SynapseConstants) -> float:
    """The placebo response builds while an administration's cue is on (``expectancy_cue``: 1
    for a treatment with perceptible effects, the inert-placebo weight for saline, during
    :data:`EXPECTANCY_CUE_H` from its start), saturating at 1, and fades between administrations.
    It is continuous, so a rating taken just before a dose does not see that dose's effect."""
    return k.k_e_build * expectancy_cue * (1.0 - expectancy) - k.k_e_decay * expectancy


def session_consolidation(
    consolidated: float, potentiation: float, therapy_session: float, k: SynapseConstants
) -> float:
    """Jump in the consolidated state at one therapy session.

    Proportional to the plasticity present at the session (basal plus fast potentiation, the
    post-infusion window), to the session's weight (1 for CBT) and to the room left below
    saturation at 1.
    """
    return (
        k.therapy_gain * therapy_session * (k.therapy_basal + potentiation) * (1.0 - consolidated)
    )
