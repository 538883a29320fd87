"""The model and a fixed protocol arm as SBML Level 3, for other simulators (libRoadRunner, COPASI).

Every registry parameter is an SBML parameter whose id is its registry name; the patient's
covariates (``weight_kg``, ``age_years``, ``met_alleles``, ...) are parameters too, so a row of a
population table sets one patient. Everything derived from them (per-hour rate constants, doses in
mg from mg/kg and weight) is an assignment rule, so it follows when a parameter is changed. States
are parameters with rate rules; time is in hours. The arm's doses, infusion edges, therapy sessions,
adjunct windows, lifestyle and medication changes are SBML events, as are the life events of the
patient exported (if any).

Inputs (infusion rates, adjunct, lifestyle, medication) are set by events to absolute values, so
the usual libRoadRunner recipe works: load, set a patient's values, ``reset()``, simulate.

The equations here restate :mod:`ketadur.model.pk`, :mod:`ketadur.model.cascade` and
:mod:`ketadur.model.synapse_mood` in SBML's infix syntax. The test suite loads the file in
libRoadRunner and checks that it reproduces the reference engine within 1e-4 relative, so the two
cannot drift apart unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import libsbml

from ketadur import __version__
from ketadur.errors import KetadurInputError
from ketadur.model import pk
from ketadur.model.kernels import NONLINEAR_STATES
from ketadur.model.parameters import REGISTRY
from ketadur.model.patient import TYPICAL_PATIENT, Patient
from ketadur.model.synapse_mood import EXPECTANCY_CUE_H
from ketadur.model.system import HEALTHY_SLEEP_H, INPUT_NAMES
from ketadur.regimen import PLACEBOS, Regimen

if TYPE_CHECKING:
    from ketadur.protocols.schema import Protocol

COVARIATES: dict[str, str] = {
    "weight_kg": "kg",
    "age_years": "years",
    "met_alleles": "BDNF Met alleles (0, 1, 2)",
    "baseline_madrs": "MADRS points",
    "situational_madrs": "MADRS points",
    "situational_half_life_days": "days",
    "chronic_stress": "index 0-1",
    "tolerance_propensity": "multiplier",
    "trkb_deleted": "0 or 1",
    "background_antidepressant": "0 or 1",
    "habitual_exercise_sessions_per_week": "sessions/week",
    "habitual_sleep_h_per_night": "h/night",
    "baseline_sbp_mmhg": "mmHg",
}
"""Patient covariates that are SBML parameters (population-table columns; ``met_alleles`` is
the count of Met alleles in ``bdnf_genotype``, the booleans are 0/1)."""

_LN2 = "ln(2)"

# Derived constants (assignment rules), in the order of PKConstants, CascadeConstants and
# SynapseConstants.from_params.
_DERIVED: tuple[tuple[str, str], ...] = (
    ("v1_l", "v1_l_per_kg * weight_kg"),
    ("v_nk_l", "v_norketamine_l_per_kg * weight_kg"),
    ("k10", "k10_per_min * 60"),
    ("k12", "k12_per_min * 60"),
    ("k21", "k21_per_min * 60"),
    ("k_nk", "cl_norketamine_l_per_h_per_kg * weight_kg / v_nk_l"),
    ("ke0", "ke0_per_min * 60"),
    ("ke0_nk", "ke0_norketamine_per_min * 60"),
    ("to_um", "fraction_unbound * 1000 / mw_ketamine_g_per_mol"),
    ("k_glutamate", f"{_LN2} / (glutamate_half_life_min / 60)"),
    ("k_bdnf", f"{_LN2} / bdnf_half_life_h"),
    (
        "release_gain",
        "bdnf_release_gain * max(0, 1 - val66met_release_reduction_per_allele * met_alleles)",
    ),
    ("trkb_present", "1 - trkb_deleted"),
    ("k_dusp6", f"{_LN2} / dusp6_half_life_h"),
    ("age_factor", "max(0.2, 1 + age_decay_gain_per_decade * (age_years - 40) / 10)"),
    ("patient_decay_factor", "age_factor * (1 + chronic_stress_decay_gain * chronic_stress)"),
    ("k_p_decay", f"{_LN2} / potentiation_half_life_h"),
    ("k_s_form", "structural_formation_per_day / 24"),
    ("k_s_decay", f"{_LN2} / (structural_half_life_days * 24)"),
    ("k_stab", "stabilisation_per_day / 24"),
    ("k_stab_decay", f"{_LN2} / (stabilised_half_life_days * 24)"),
    ("k_h_decay", f"{_LN2} / (homeostasis_half_life_days * 24)"),
    ("k_tol_build", "tolerance_build_per_h * tolerance_propensity"),
    ("k_tol_decay", f"{_LN2} / (tolerance_half_life_days * 24)"),
    ("k_c_decay", f"{_LN2} / (consolidation_half_life_days * 24)"),
    ("k_z_decay", f"{_LN2} / (situational_half_life_days * 24)"),
    ("k_e_build", f"-ln(1 - expectancy_gain_per_administration) / {EXPECTANCY_CUE_H!r}"),
    ("k_e_decay", f"{_LN2} / (expectancy_half_life_days * 24)"),
    ("k_a_decay", f"{_LN2} / acute_half_life_h"),
    ("core_madrs", "baseline_madrs - situational_madrs"),
    ("habitual_sleep_deficit_h", f"max(0, {HEALTHY_SLEEP_H} - habitual_sleep_h_per_night)"),
)

# Algebraic signals (assignment rules): cascade.py and synapse_mood.py.
_SIGNALS: tuple[tuple[str, str], ...] = (
    ("s_ketamine_um", "ce_ketamine_s * to_um"),
    ("r_ketamine_um", "ce_ketamine_r * to_um"),
    ("s_norketamine_um", "ce_norketamine_s * to_um"),
    ("r_norketamine_um", "ce_norketamine_r * to_um"),
    (
        "nmda_block",
        "s_ketamine_um / ki_s_ketamine_um + r_ketamine_um / ki_r_ketamine_um"
        " + s_norketamine_um / ki_s_norketamine_um + r_norketamine_um / ki_r_norketamine_um",
    ),
    ("nmda_occupancy", "nmda_block / (1 + nmda_block)"),
    ("ampa", "max(glutamate, 0) * (1 + potentiation)"),
    ("trkb", "trkb_present * (bdnf - 1)"),
    ("mtor_drive", "max(trkb, 0) + mtor_erk_weight * max(erk, 0)"),
    (
        "mtorc1",
        "mtor_drive^mtor_hill / (mtor_half_activation^mtor_hill + mtor_drive^mtor_hill)",
    ),
    ("oral_antidepressant", "min(1, background_antidepressant + medication_windows)"),
    (
        "decay_rate",
        "patient_decay_factor"
        " * max(0.2, 1 + sleep_deficit_decay_gain_per_h * sleep_deficit_change)"
        " * max(0.2, 1 - exercise_decay_reduction_per_session_per_week * exercise_change)"
        " * (1 + homeostasis_gain * homeostasis) / (1 + erk_decay_protection * max(erk, 0))",
    ),
    (
        "relief_drive",
        "relief_weight_acute * acute + relief_weight_potentiation * potentiation"
        " + relief_weight_structural * structural"
        " + relief_weight_stabilised * stabilised + relief_weight_consolidated * consolidated"
        " + expectancy",
    ),
    (
        "relief",
        "(1 - madrs_refractory_fraction) * max(0, relief_drive)^relief_hill"
        " / (relief_half_max^relief_hill + max(0, relief_drive)^relief_hill)",
    ),
    ("madrs", "min(60, max(0, core_madrs * (1 - relief) + situational))"),
    (
        "cadss",
        "cadss_emax_points * nmda_occupancy^cadss_hill"
        " / (cadss_occupancy50^cadss_hill + nmda_occupancy^cadss_hill)",
    ),
    ("plasma_ketamine_ng_per_ml", "(central_s + central_r) / v1_l * 1000"),
    (
        "plasma_norketamine_ng_per_ml",
        "(norketamine_s + norketamine_r) / v_nk_l * 1000"
        " * mw_norketamine_g_per_mol / mw_ketamine_g_per_mol",
    ),
    (
        "sbp_mmhg",
        "baseline_sbp_mmhg + sbp_emax_mmhg * plasma_ketamine_ng_per_ml"
        " / (sbp_ec50_ng_per_ml + plasma_ketamine_ng_per_ml)",
    ),
    (
        "plasma_bdnf_ng_per_ml",
        "plasma_bdnf_baseline_ng_per_ml * (1 + plasma_bdnf_coupling * (bdnf - 1))",
    ),
)


def _pk_rates(e: str) -> dict[str, str]:
    """Rate rules of one enantiomer's PK states (pk.pk_matrices written out)."""
    return {
        f"depot_nasal_{e}": f"-ka_intranasal_per_h * depot_nasal_{e}",
        f"depot_oral_{e}": f"-ka_oral_per_h * depot_oral_{e}",
        f"depot_im_{e}": f"-ka_im_per_h * depot_im_{e}",
        f"depot_presystemic_nk_{e}": f"-ka_oral_per_h * depot_presystemic_nk_{e}",
        f"central_{e}": (
            f"ka_intranasal_per_h * depot_nasal_{e} + ka_oral_per_h * depot_oral_{e}"
            f" + ka_im_per_h * depot_im_{e} - (k10 + k12) * central_{e} + k21 * peripheral_{e}"
            f" + iv_rate_{e}_mg_per_h"
        ),
        f"peripheral_{e}": f"k12 * central_{e} - k21 * peripheral_{e}",
        f"norketamine_{e}": (
            f"fraction_to_norketamine * k10 * central_{e}"
            f" + ka_oral_per_h * depot_presystemic_nk_{e} - k_nk * norketamine_{e}"
        ),
        f"cleared_{e}": (
            f"(1 - fraction_to_norketamine) * k10 * central_{e} + k_nk * norketamine_{e}"
        ),
        f"ce_ketamine_{e}": f"ke0 / v1_l * central_{e} - ke0 * ce_ketamine_{e}",
        f"ce_norketamine_{e}": f"ke0_nk / v_nk_l * norketamine_{e} - ke0_nk * ce_norketamine_{e}",
    }


_NONLINEAR_RATES: dict[str, str] = {
    "glutamate": ("k_glutamate * (glutamate_gain * nmda_occupancy / (1 + tolerance) - glutamate)"),
    "bdnf": (
        "k_bdnf * (1 + release_gain * (1 + antidepressant_bdnf_gain * oral_antidepressant) * ampa"
        " + bdnf_synaptic_feedback * structural"
        " + exercise_bdnf_gain_per_session_per_week * exercise_change - bdnf)"
    ),
    "erk": (
        "erk_activation_per_h * trkb - erk_deactivation_per_h * dusp6"
        " * (1 - dusp6_inhibitor_block_fraction * dusp6_inhibitor) * erk"
    ),
    "dusp6": "k_dusp6 * (max(0, 1 + dusp6_induction_gain * erk) - dusp6)",
    "potentiation": (
        "potentiation_formation_per_h * mtorc1 * (1 - potentiation) - k_p_decay * potentiation"
    ),
    "structural": (
        "k_s_form * potentiation * (1 - structural) - k_s_decay * decay_rate * structural"
    ),
    "stabilised": (
        "k_stab * (1 + erk_stabilisation_gain * max(erk, 0)) * structural^2 * (1 - stabilised)"
        " - k_stab_decay * decay_rate * stabilised"
    ),
    "homeostasis": "homeostasis_build_per_h * max(glutamate, 0) - k_h_decay * homeostasis",
    "tolerance": "k_tol_build * nmda_occupancy - k_tol_decay * tolerance",
    "consolidated": "-k_c_decay * consolidated",
    "situational": "-k_z_decay * situational",
    "expectancy": "k_e_build * expectancy_cue * (1 - expectancy) - k_e_decay * expectancy",
    "acute": (
        "acute_formation_per_h * trkb_present * nmda_occupancy * (1 - acute) - k_a_decay * acute"
    ),
}

_INPUTS = (
    "iv_rate_s_mg_per_h",
    "iv_rate_r_mg_per_h",
    "dusp6_inhibitor",
    "exercise_change",
    "sleep_deficit_change",
    "medication_windows",
    "expectancy_cue",
)
"""Event-driven inputs; ``dusp6_inhibitor`` and ``medication_windows`` count open windows, and
``oral_antidepressant`` (the model input) follows from it and the patient's background;
``expectancy_cue`` sums the weights of the administrations whose treatment hour is open."""
assert set(_INPUTS) - {"medication_windows"} == set(INPUT_NAMES) - {"oral_antidepressant"}


def patient_values(patient: Patient) -> dict[str, float]:
    """Every SBML parameter a patient sets: covariates and registry parameters."""
    values = {
        "weight_kg": patient.weight_kg,
        "age_years": patient.age_years,
        "met_alleles": float(patient.met_alleles),
        "baseline_madrs": patient.baseline_madrs,
        "situational_madrs": patient.situational_madrs,
        "situational_half_life_days": patient.situational_half_life_days,
        "chronic_stress": patient.chronic_stress,
        "tolerance_propensity": patient.tolerance_propensity,
        "trkb_deleted": float(patient.trkb_deleted),
        "background_antidepressant": float(patient.background_antidepressant),
        "habitual_exercise_sessions_per_week": patient.habitual_exercise_sessions_per_week,
        "habitual_sleep_h_per_night": patient.habitual_sleep_h_per_night,
        "baseline_sbp_mmhg": patient.baseline_sbp_mmhg,
    }
    values.update(dict(patient.params))
    return values


def _check(status: int, what: str) -> None:
    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise RuntimeError(f"SBML export: {what}: {libsbml.OperationReturnValue_toString(status)}")


def _math(formula: str) -> libsbml.ASTNode:
    ast = libsbml.parseL3Formula(formula)
    if ast is None:
        raise RuntimeError(
            f"SBML export: cannot parse {formula!r}: {libsbml.getLastParseL3Error()}"
        )
    return ast


class _Builder:
    def __init__(self, model_id: str, title: str) -> None:
        self.doc = libsbml.SBMLDocument(3, 2)
        self.model = self.doc.createModel()
        _check(self.model.setId(model_id), "model id")
        _check(self.model.setName(title), "model name")
        _check(self.model.setTimeUnits("hour"), "time units")
        hour = self.model.createUnitDefinition()
        hour.setId("hour")
        unit = hour.createUnit()
        unit.setKind(libsbml.UNIT_KIND_SECOND)
        unit.setExponent(1)
        unit.setScale(0)
        unit.setMultiplier(3600.0)
        self.n_events = 0

    def parameter(self, pid: str, value: float, constant: bool, name: str = "") -> None:
        p = self.model.createParameter()
        _check(p.setId(pid), f"parameter {pid}")
        _check(p.setValue(float(value)), f"value of {pid}")
        _check(p.setConstant(constant), f"constant flag of {pid}")
        if name:
            p.setName(name)

    def assignment(self, pid: str, formula: str) -> None:
        self.parameter(pid, 0.0, False)
        rule = self.model.createAssignmentRule()
        rule.setVariable(pid)
        _check(rule.setMath(_math(formula)), f"rule of {pid}")

    def rate(self, pid: str, formula: str, initial: float, name: str) -> None:
        self.parameter(pid, initial, False, name)
        rule = self.model.createRateRule()
        rule.setVariable(pid)
        _check(rule.setMath(_math(formula)), f"rate rule of {pid}")

    def initial(self, pid: str, formula: str) -> None:
        ia = self.model.createInitialAssignment()
        ia.setSymbol(pid)
        _check(ia.setMath(_math(formula)), f"initial assignment of {pid}")

    def event(self, t_h: float, changes: Mapping[str, str], what: str) -> None:
        """At ``t_h`` hours, set each variable to its formula (evaluated just before the event)."""
        self.n_events += 1
        ev = self.model.createEvent()
        ev.setId(f"e{self.n_events:04d}")
        ev.setName(what)
        ev.setUseValuesFromTriggerTime(True)
        trigger = ev.createTrigger()
        trigger.setInitialValue(False)
        trigger.setPersistent(True)
        _check(trigger.setMath(_math(f"time >= {t_h!r}")), f"trigger of {what}")
        # Events at the same time keep the engine's order: sessions before doses.
        priority = ev.createPriority()
        priority.setMath(_math("1" if what.startswith("session") else "0"))
        for variable, formula in changes.items():
            a = ev.createEventAssignment()
            a.setVariable(variable)
            _check(a.setMath(_math(formula)), f"assignment to {variable} in {what}")


def _add_window_counts(b: _Builder, variable: str, windows: list[tuple[float, float]]) -> None:
    """Events setting ``variable`` to the number of ``(start_day, end_day)`` windows open, at
    every window edge (as the engines sum overlapping windows)."""
    edges = sorted({t for w in windows for t in w if math.isfinite(t)})
    for t in edges:
        count = sum(1 for start, end in windows if start <= t < end)
        b.event(t * 24.0, {variable: str(count)}, f"{variable} = {count} from day {t:g}")


def _add_expectancy_cues(b: _Builder, regimen: Regimen) -> None:
    """Events setting ``expectancy_cue`` to the summed weight of the open administration cues
    (1, or the inert-placebo weight for saline) at every cue edge, as the engines do."""
    cues = [
        (d.day * 24.0, d.day * 24.0 + EXPECTANCY_CUE_H, d.drug == "placebo") for d in regimen.doses
    ]
    for t in sorted({t for c in cues for t in c[:2]}):
        open_ = [inert for start, end, inert in cues if start <= t < end]
        terms = ["inert_placebo_expectancy_weight" if inert else "1" for inert in open_]
        b.event(t, {"expectancy_cue": " + ".join(terms) or "0"}, f"expectancy cue at {t:g} h")


def _add_regimen(b: _Builder, regimen: Regimen) -> None:
    _add_expectancy_cues(b, regimen)
    for k, dose in enumerate(regimen.doses):
        if dose.drug in PLACEBOS:
            continue
        amount = (
            f"{dose.dose_mg:.17g}"
            if dose.dose_mg is not None
            else f"{dose.dose_mg_per_kg:.17g} * weight_kg"
        )
        split = pk.enantiomer_split(dose)
        t0 = dose.day * 24.0
        label = f"dose {k + 1}: {dose.drug} {dose.route} day {dose.day:g}"
        if dose.route == "iv" and dose.infusion_minutes > 0:
            # Absolute values (infusions never overlap): re-firing an event is harmless.
            hours = dose.infusion_minutes / 60.0
            start = {
                f"iv_rate_{e}_mg_per_h": f"{frac!r} * {amount} / {hours!r}"
                for e, frac in split.items()
            }
            b.event(t0, start, f"{label}, infusion start")
            b.event(t0 + hours, dict.fromkeys(start, "0"), f"{label}, infusion end")
            continue
        changes: dict[str, str] = {}
        for e, frac in split.items():
            a = f"{frac!r} * {amount}"
            if dose.route == "iv":
                changes[f"central_{e}"] = f"central_{e} + {a}"
            elif dose.route == "im":
                changes[f"depot_im_{e}"] = f"depot_im_{e} + bioavailability_im * {a}"
                changes[f"cleared_{e}"] = f"cleared_{e} + (1 - bioavailability_im) * {a}"
            else:
                depot, f = (
                    ("depot_nasal", "bioavailability_intranasal")
                    if dose.route == "intranasal"
                    else ("depot_oral", "bioavailability_oral")
                )
                pre = "fraction_presystemic_to_norketamine"
                changes[f"{depot}_{e}"] = f"{depot}_{e} + {f} * {a}"
                changes[f"depot_presystemic_nk_{e}"] = (
                    f"depot_presystemic_nk_{e} + (1 - {f}) * {pre} * {a}"
                )
                changes[f"cleared_{e}"] = f"cleared_{e} + (1 - {f}) * (1 - {pre}) * {a}"
        b.event(t0, changes, label)
    _add_window_counts(b, "dusp6_inhibitor", [(w.start_day, w.end_day) for w in regimen.adjuncts])
    for change in sorted(regimen.lifestyle, key=lambda c: c.start_day):
        sleep = f"max(0, {HEALTHY_SLEEP_H} - {change.sleep_h_per_night!r})"
        b.event(
            change.start_day * 24.0,
            {
                "exercise_change": (
                    f"{change.exercise_sessions_per_week!r} - habitual_exercise_sessions_per_week"
                ),
                "sleep_deficit_change": f"{sleep} - habitual_sleep_deficit_h",
            },
            f"lifestyle from day {change.start_day:g}",
        )
    windows = [
        (m.start_day, math.inf if m.end_day is None else m.end_day) for m in regimen.medications
    ]
    _add_window_counts(b, "medication_windows", windows)
    for s in regimen.sessions:
        weight = "mindfulness_session_weight" if s.kind == "mindfulness" else "1"
        jump = (
            f"consolidated + therapy_consolidation_gain * {weight}"
            " * (therapy_basal_plasticity + potentiation) * (1 - consolidated)"
        )
        b.event(s.day * 24.0, {"consolidated": jump}, f"session {s.kind} day {s.day:g}")


def regimen_document(
    regimen: Regimen, patient: Patient = TYPICAL_PATIENT, *, model_id: str = "ketadur"
) -> libsbml.SBMLDocument:
    """SBML Level 3 Version 2 of the model under ``regimen``, with ``patient``'s values as the
    parameters' values and the patient's life events as events."""
    b = _Builder(model_id, f"ketadur {__version__}: {regimen.name}")
    values = patient_values(patient)
    for name, unit in COVARIATES.items():
        b.parameter(name, values[name], True, f"covariate ({unit})")
    for name, p in REGISTRY.items():
        b.parameter(name, values[name], True, f"{p.description} [{p.unit}; {p.status}]")
    for name in _INPUTS:
        b.parameter(name, 0.0, False, "input set by events")
    for name, formula in _DERIVED + _SIGNALS:
        b.assignment(name, formula)
    for e in pk.ENANTIOMERS:
        for name, formula in _pk_rates(e).items():
            b.rate(name, formula, 0.0, "PK state (mg, or mg/L for ce_*)")
    start = {"bdnf": 1.0, "dusp6": 1.0}
    for name in NONLINEAR_STATES:
        b.rate(name, _NONLINEAR_RATES[name], start.get(name, 0.0), "cascade or synapse state")
    b.initial("situational", "situational_madrs")
    _add_regimen(b, regimen)
    for event in patient.life_events:
        b.event(
            event.day * 24.0,
            {"situational": f"situational + {event.madrs_points!r}"},
            f"life event day {event.day:g}",
        )
    n_errors = b.doc.checkInternalConsistency()
    if n_errors:
        raise RuntimeError(f"SBML export: inconsistent document: {b.doc.getErrorLog().toString()}")
    return b.doc


def sbml_text(
    regimen: Regimen, patient: Patient = TYPICAL_PATIENT, model_id: str = "ketadur"
) -> str:
    """The SBML document of :func:`regimen_document` as XML text."""
    return libsbml.writeSBMLToString(regimen_document(regimen, patient, model_id=model_id))


def antimony_text(sbml: str) -> str:
    """The same model in Antimony, the human-readable notation (needs the ``antimony`` package)."""
    try:
        import antimony
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise KetadurInputError(
            "antimony", "needs the antimony package: pip install 'ketadur[interop]'"
        ) from exc
    antimony.clearPreviousLoads()
    if antimony.loadSBMLString(sbml) < 0:
        raise RuntimeError(f"antimony could not read the SBML: {antimony.getLastError()}")
    return antimony.getAntimonyString(antimony.getMainModuleName())


def protocol_sbml(
    protocol: Protocol, arm: str | None = None, patient: Patient = TYPICAL_PATIENT
) -> str:
    """SBML text of a fixed (non-adaptive) protocol arm for ``patient`` (default: typical).

    Adaptive arms are refused: their doses depend on the patient's simulated response, which
    SBML events given in advance cannot express."""
    from ketadur.engine.population import is_adaptive
    from ketadur.protocols.schedule import fixed_regimen

    chosen = protocol.arm(arm)
    if is_adaptive(chosen):
        raise KetadurInputError(
            "arm",
            "is adaptive (doses depend on the response, or phases have entry criteria); "
            "SBML holds fixed dosing only: choose a fixed arm",
            chosen.name,
        )
    regimen = fixed_regimen(protocol, chosen)
    model_id = f"{protocol.name}_{chosen.name}".replace("-", "_")
    return sbml_text(regimen, patient, model_id=model_id)
