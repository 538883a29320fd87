"""The protocol language: clear errors for invalid protocols, compiler invariants (hypothesis), a
YAML fuzz test, adaptive rules inside the simulation, and NONMEM round trips."""

from __future__ import annotations

import copy
import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY, ParameterSet
from ketadur.model.patient import LifeEvent, Patient
from ketadur.protocols.execute import run_protocol
from ketadur.protocols.io import load_protocol, protocol_from_dict, protocol_from_yaml
from ketadur.protocols.nonmem import read_nonmem, to_nonmem, write_nonmem
from ketadur.protocols.schedule import compile_protocol
from ketadur.protocols.schema import Protocol
from ketadur.regimen import Dose, Regimen

BASE = {
    "name": "base",
    "title": "Base",
    "summary": "Two phases.",
    "citations": ["test"],
    "evidence": "synthesised",
    "duration_days": 60,
    "endpoints": {"response": {"improvement_percent_at_least": 50}},
    "arms": [
        {
            "name": "a",
            "phases": [
                {
                    "name": "induction",
                    "duration_days": 14,
                    "drugs": [
                        {
                            "drug": "racemic_ketamine",
                            "route": "iv",
                            "dose_mg_per_kg": 0.5,
                            "infusion_minutes": 40,
                            "schedule": {"days": [0, 2, 4]},
                        }
                    ],
                },
                {"name": "follow_up", "duration_days": 30, "entry": "responders"},
            ],
        }
    ],
}
DRUG = ("arms", 0, "phases", 0, "drugs", 0)


def _with(path: tuple, value) -> dict:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _error(data: dict) -> KetadurInputError:
    with pytest.raises(KetadurInputError) as info:
        protocol_from_dict(data)
    return info.value


def test_base_protocol_is_valid():
    assert protocol_from_dict(BASE).arms[0].phases[1].entry.require == "response"


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ((*DRUG, "drug"), "ketamine_hcl", "arms[0].phases[0].drugs[0].drug", "Input should be"),
        ((*DRUG, "route"), "rectal", "arms[0].phases[0].drugs[0].route", "Input should be"),
        ((*DRUG, "schedule"), {"days": [-1, 2]}, "drugs[0].schedule.days", "negative"),
        ((*DRUG, "schedule"), {"days": [0, 0.01]}, "drugs[0].schedule", "closer than"),
        ((*DRUG, "schedule"), {"days": [2, 2]}, "drugs[0].schedule.days", "repeat"),
        ((*DRUG, "schedule"), {"days": [20]}, "drugs[0].schedule", "outside"),
        ((*DRUG, "dose_mg_per_kg"), 1.5, "drugs[0].dose_mg_per_kg", "IV ceiling of 1 mg/kg"),
        ((*DRUG, "infusion_minutes"), 0.5, "drugs[0].infusion_minutes", "at least 1 minute"),
        (("arms", 0, "phases", 1, "entry"), "remitters", "phases[1].entry.require", "unknown"),
        (("arms", 0, "phases", 0, "entry"), "responders", "phases[0].entry.require", "preceding"),
        (("arms", 0, "phases", 1, "entry"), "everyone", "phases[1].entry", "must be one of"),
        (
            ("arms", 0, "phases", 1, "rules"),
            [{"kind": "booster", "on": "relapse"}],
            "phases[1].rules[0].on",
            "unknown endpoint",
        ),
        (("duration_days",), 20, "arms[0].phases", "longer than duration_days"),
        (("arms", 0, "phases", 1, "duration_days"), -3, "phases[1].duration_days", "greater"),
    ],
)
def test_invalid_protocols_name_the_field_and_reason(path, value, field, reason):
    err = _error(_with(path, value))
    assert field in err.field
    assert reason in err.rule


def test_iv_ceiling_is_configurable_and_can_be_allowed():
    high = _with((*DRUG, "dose_mg_per_kg"), 1.5)
    high["limits"] = {"max_iv_dose_mg_per_kg": 2.0}
    assert protocol_from_dict(high)
    high["limits"] = {"allow_above_ceiling": True}
    assert protocol_from_dict(high)


def test_minimum_spacing_is_configurable():
    close = _with((*DRUG, "schedule"), {"days": [0, 1, 2]})
    protocol_from_dict(close)  # 24 h apart: allowed by the default 24 h spacing
    close["limits"] = {"min_dose_spacing_hours": 48}
    assert "closer than" in _error(close).rule


def test_malformed_yaml_reports_line_and_column():
    text = "name: x\narms:\n  - name: a\n    phases: [\n"
    with pytest.raises(KetadurInputError) as info:
        protocol_from_yaml(text, "bad.yaml")
    assert info.value.field.startswith("bad.yaml:")
    line, col = info.value.field.split(":")[1:3]
    assert int(line) >= 4 and int(col) >= 1
    with pytest.raises(KetadurInputError, match="duplicate key"):
        protocol_from_yaml("name: a\nname: b\n", "dup.yaml")


def test_yaml_on_is_a_key_not_a_boolean():
    data = copy.deepcopy(BASE)
    data["endpoints"]["relapse"] = {"improvement_percent_below": 50}
    data["arms"][0]["phases"][1]["rules"] = [{"kind": "booster", "on": "relapse"}]
    text = yaml.safe_dump(data).replace("'on':", "on:")
    assert "\n      on: relapse" in text or "on: relapse" in text
    assert protocol_from_yaml(text).arms[0].phases[1].rules[0].on == "relapse"


def test_cli_check_exits_2_with_one_line_for_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with((*DRUG, "dose_mg_per_kg"), 3.0)))
    proc = subprocess.run(
        [sys.executable, "-m", "ketadur.cli", "protocols", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "arms[0].phases[0].drugs[0].dose_mg_per_kg" in proc.stderr


# ----------------------------------------------------------- compiler invariants (hypothesis)


@st.composite
def protocols(draw):
    phases = []
    for j in range(draw(st.integers(1, 3))):
        duration = draw(st.integers(7, 40))
        every = draw(st.integers(1, 10))
        count = draw(st.integers(1, (duration - 1) // every + 1))
        phase = {
            "name": f"p{j}",
            "duration_days": duration,
            "drugs": [
                {
                    "drug": draw(st.sampled_from(["racemic_ketamine", "esketamine"])),
                    "route": "iv",
                    "dose_mg_per_kg": draw(st.floats(0.1, 1.0)),
                    "infusion_minutes": draw(st.sampled_from([0, 1, 40, 100])),
                    "schedule": {"every_days": every, "count": count},
                }
            ],
            "therapy": [
                {
                    "kind": draw(st.sampled_from(["cbt", "integration", "mindfulness"])),
                    "schedule": {"per_week": 1, "weeks": max(1, (duration - 7) // 7)},
                    "avoid_infusion_days": draw(st.booleans()),
                }
            ],
        }
        phases.append(phase)
    total = sum(p["duration_days"] for p in phases)
    return {**BASE, "duration_days": total + draw(st.integers(0, 20)), "endpoints": {},
            "arms": [{"name": "a", "phases": phases}]}  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=protocols(), weight_kg=st.floats(40, 150))
def test_compiler_invariants(data, weight_kg):
    try:
        protocol = protocol_from_dict(data)
    except KetadurInputError as exc:  # a session pushed past its phase end: a clean error
        assert "outside" in exc.rule
        return
    compiled = compile_protocol(protocol, Patient(weight_kg=weight_kg))
    table = compiled.table()
    times = table["t_days"].to_numpy()
    assert np.all(np.diff(np.round(times, 9)) >= 0)
    assert times.min() >= 0 and times.max() <= protocol.duration_days + 1e-9
    starts = table[table["kind"].isin(["infusion_start", "bolus"])]
    planned = sum(d["schedule"]["count"] for p in data["arms"][0]["phases"] for d in p["drugs"])
    assert len(starts) == planned
    assert np.all(np.diff(starts["t_days"]) * 24 >= protocol.limits.min_dose_spacing_hours - 1e-6)
    for (_, s), (_, dose) in zip(starts.iterrows(), _doses(data), strict=True):
        assert s["amount_mg"] == pytest.approx(dose["dose_mg_per_kg"] * weight_kg)
        if s["kind"] == "infusion_start":
            assert s["rate_mg_per_h"] * dose["infusion_minutes"] / 60 == pytest.approx(
                s["amount_mg"]
            )
    stops = table[table["kind"] == "infusion_stop"]
    assert len(stops) == (starts["kind"] == "infusion_start").sum()
    # Each phase's events lie inside it; sessions avoid infusion days where asked.
    bounds = dict(zip((p.phase.name for p in compiled.plans), compiled.plans, strict=True))
    for ev in table.itertuples():
        if ev.kind in {"infusion_start", "bolus", "session"}:
            plan = bounds[ev.phase]
            assert plan.start_day - 1e-9 <= ev.t_days < plan.end_day
    infusion_days = {math.floor(d + 1e-9) for d in starts["t_days"]}
    for plan in compiled.plans:
        if plan.phase.therapy[0].avoid_infusion_days:
            assert not {math.floor(t + 1e-9) for t, _ in plan.sessions} & infusion_days


def _doses(data):
    out = []
    for p in data["arms"][0]["phases"]:
        for d in p["drugs"]:
            out += [(None, d)] * d["schedule"]["count"]
    return out


# -------------------------------------------------------------------------------------- fuzzing

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_tree = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_random_text_gives_only_clean_errors(text):
    _protocol_or_clean_error(text)


@settings(max_examples=150, deadline=None)
@given(tree=_tree)
def test_fuzz_random_yaml_structures_give_only_clean_errors(tree):
    _protocol_or_clean_error(yaml.safe_dump(tree))


def _protocol_or_clean_error(text: str) -> None:
    """Anything else (TypeError, KeyError, a pydantic error...) fails the test."""
    try:
        assert isinstance(protocol_from_yaml(text), Protocol)
    except KetadurInputError as exc:
        assert exc.field and exc.rule


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


_BASE_PATHS = list(_paths(BASE))


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(_BASE_PATHS) - 1), value=_tree)
def test_fuzz_mutated_valid_protocol_gives_a_protocol_or_a_clean_error(index, value):
    _protocol_or_clean_error(yaml.safe_dump(_with(_BASE_PATHS[index], value)))


# ------------------------------------------------------------------------------ adaptive rules

WELL = Patient(subject_id="well", baseline_madrs=22)
EARLY_RISE = Patient(subject_id="rise", life_events=(LifeEvent(day=20, madrs_points=12),))


def _doses_given(run) -> list[float]:
    return [d.day for d in run.regimen.doses]


def test_interval_rule_shortens_for_early_rise_and_not_for_a_patient_who_stays_well():
    protocol = load_protocol("adaptive_maintenance")
    well = run_protocol(protocol, WELL, output_step_hours=24.0)
    rise = run_protocol(protocol, EARLY_RISE, output_step_hours=24.0)
    planned = [d.day for d in compile_protocol(protocol, WELL).regimen().doses]
    assert "interval shortened" not in set(well.decisions["decision"])
    # never dosed more often than planned (a stable patient's interval may lengthen)
    well_maintenance = [d for d in _doses_given(well) if d >= 14]
    assert len(well_maintenance) <= len([d for d in planned if d >= 14])
    assert np.diff(well_maintenance).min() >= np.diff([d for d in planned if d >= 14]).min()
    assert "interval shortened" in set(rise.decisions["decision"])
    first_short = rise.decisions.query("decision == 'interval shortened'")["t_days"].iloc[0]
    assert 20 <= first_short <= 35  # the MADRS rise after the life event was acted on
    rise_maintenance = [d for d in _doses_given(rise) if d >= 14]
    planned_maintenance = [d for d in planned if d >= 14]
    assert len(rise_maintenance) > len(planned_maintenance)
    assert any(d not in planned for d in rise_maintenance)


def test_interval_is_lengthened_when_stable():
    mild = Patient(subject_id="mild", baseline_madrs=16)  # every rating stays <= 12
    well = run_protocol(load_protocol("adaptive_maintenance"), mild, output_step_hours=24.0)
    assert "interval lengthened" in set(well.decisions["decision"])
    gaps = np.diff([d for d in _doses_given(well) if d >= 14])
    assert gaps.max() > 21


def test_booster_on_relapse_fires_only_on_relapse():
    data = load_protocol("booster_on_relapse").model_dump()
    data["duration_days"] = 56  # six weeks of follow-up after induction
    follow_up = data["arms"][0]["phases"][1]
    follow_up["duration_days"] = 42
    follow_up["assessments"][0]["schedule"]["until_day"] = 42
    protocol = protocol_from_dict(data)
    durable = ParameterSet.typical().replace(
        stabilised_half_life_days=REGISTRY["stabilised_half_life_days"].upper,
        structural_half_life_days=REGISTRY["structural_half_life_days"].upper,
    )
    well = run_protocol(protocol, Patient(subject_id="durable", params=durable))
    rise = run_protocol(protocol, EARLY_RISE, output_step_hours=24.0)
    boosters = rise.events_table().query("source.str.contains('booster')", engine="python")
    assert len(boosters) >= 1 and rise.n_doses > 6
    assert well.n_doses == 6 and "booster" not in set(well.decisions["decision"])
    madrs = rise.assessments.query("measure == 'madrs'")
    first = rise.decisions.query("decision == 'booster'")["t_days"].iloc[0]
    before = madrs[madrs["t_days"] <= first]["value"].iloc[-2:]
    assert (before > 0.5 * 32).all()  # two consecutive ratings had lost the response


def test_entry_criteria_and_stop_rule_are_applied():
    protocol = load_protocol("sustain1")
    run = run_protocol(protocol, arm="esketamine_stable_remitters", output_step_hours=24.0)
    stable = protocol.endpoints["stable_remission"]
    ratings = run.assessments.query("phase == 'optimisation_individualised' and measure == 'madrs'")
    expected = stable.met(list(ratings["value"]), 32.0)
    assert ("maintenance" in run.phases_entered) == expected


def test_randomised_fraction_uses_the_seed():
    data = _with(("arms", 0, "phases", 1, "entry"), {"fraction": 0.5})
    protocol = protocol_from_dict(data)
    entered = [
        "follow_up" in run_protocol(protocol, seed=s, output_step_hours=24.0).phases_entered
        for s in range(12)
    ]
    assert 0 < sum(entered) < 12
    again = ["follow_up" in run_protocol(protocol, seed=s, output_step_hours=24.0).phases_entered
             for s in range(12)]  # fmt: skip
    assert entered == again


# ---------------------------------------------------------------------------- NONMEM round trip


def _fixed_mg(regimen: Regimen, weight_kg: float) -> Regimen:
    doses = tuple(
        d
        if d.drug == "placebo" or d.dose_mg is not None
        else d.model_copy(update={"dose_mg": d.amount_mg(weight_kg), "dose_mg_per_kg": None})
        for d in regimen.doses
    )
    return regimen.model_copy(update={"doses": doses, "name": "nonmem import"})


@pytest.mark.parametrize(
    ("name", "arm"),
    [
        ("protocol2_kap_cbt", None),
        ("sustain1", "placebo_stable_responders"),
        ("lifestyle_augmentation", None),
        ("dusp6_adjunct", None),
    ],
)
def test_nonmem_round_trip_is_lossless(tmp_path, name, arm):
    patient = Patient(weight_kg=83.3)
    run = run_protocol(load_protocol(name), patient, arm=arm, output_step_hours=24.0)
    path = tmp_path / "events.csv"
    frame = to_nonmem(run.regimen, patient, observations=run.assessments)
    assert list(frame.columns[:8]) == ["ID", "TIME", "EVID", "AMT", "RATE", "CMT", "DV", "MDV"]
    write_nonmem(frame, path)
    regimen, observations = read_nonmem(path)
    assert regimen == _fixed_mg(run.regimen, patient.weight_kg)
    assert list(observations["measure"]) == list(run.assessments["measure"])
    assert np.array_equal(observations["value"], run.assessments["value"])
    assert np.allclose(observations["t_days"], run.assessments["t_days"], rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(0, 200), min_size=1, max_size=8, unique=True),
    mg=st.floats(1, 200),
    minutes=st.sampled_from([0.0, 1.0, 40.0, 52.5]),
    route=st.sampled_from(["iv", "intranasal", "oral", "im"]),
)
def test_nonmem_round_trip_property(tmp_path_factory, days, mg, minutes, route):
    minutes = minutes if route == "iv" else 0.0
    regimen = Regimen(
        name="nonmem import",
        doses=tuple(
            Dose(day=d + 0.25, route=route, dose_mg=mg, infusion_minutes=minutes)
            for d in sorted(days)
        ),
    )
    path = tmp_path_factory.mktemp("nm") / "x.csv"
    write_nonmem(to_nonmem(regimen, Patient()), path)
    assert read_nonmem(path)[0] == regimen


def test_events_are_sorted_and_pairs_match():
    table = compile_protocol(load_protocol("maintenance_frequency"), Patient(), "weekly").table()
    starts = table[table["kind"] == "infusion_start"]["t_days"].to_numpy()
    stops = table[table["kind"] == "infusion_stop"]["t_days"].to_numpy()
    assert np.allclose(stops - starts, 40 / 1440)
    assert all(a <= b for a, b in itertools.pairwise(np.round(table["t_days"], 9)))


def test_the_documented_example_protocol_validates_and_runs():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "protocols.md").read_text()
    text = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    protocol = protocol_from_yaml(text, "docs/protocols.md")
    run = run_protocol(protocol, output_step_hours=24.0)
    assert run.result.status == "success" and run.n_doses >= 6


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_runner_split_at_decision_points_matches_one_simulation(engine):
    """The runner stops at every assessment; here a dissociation rating 30 min after an
    intranasal dose falls inside the hour in which the dose builds expectancy. Splitting must
    change nothing: the MADRS course equals one simulation of the same regimen."""
    from ketadur.engine.reference import simulate
    from ketadur.protocols.schedule import fixed_regimen

    spray = {"drug": "esketamine", "route": "intranasal", "dose_mg": 56, "schedule": {"days": [0]}}
    proto = protocol_from_dict(
        {
            "name": "split_check",
            "title": "One esketamine spray",
            "summary": "A dose, a rating inside its first hour, MADRS after.",
            "evidence": "synthesised",
            "citations": ["test design"],
            "duration_days": 7,
            "arms": [
                {
                    "name": "spray",
                    "phases": [
                        {
                            "name": "dose",
                            "duration_days": 7,
                            "drugs": [spray],
                            "assessments": [
                                {"measures": ["cadss"], "anchor": "first_infusion",
                                 "minutes_after": [30]},
                                {"measures": ["madrs"], "schedule": {"days": [0, 1, 3, 7]}},
                            ],
                        }
                    ],
                }
            ],
        }
    )  # fmt: skip
    run = run_protocol(proto, engine=engine)
    days = [1.0 / 24.0, 1.0, 3.0, 7.0]
    whole = simulate(fixed_regimen(proto, proto.arms[0]), t_end_days=7.0, output_days=days)
    for day in days:
        assert run.result.at(day) == pytest.approx(whole.at(day), rel=1e-4), day
