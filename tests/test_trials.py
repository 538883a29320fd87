"""In-silico trials: observation, endpoint definitions, survival statistics and the trial runner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ketadur.engine.population import adaptive_runs
from ketadur.errors import KetadurInputError
from ketadur.population.generate import generate_population
from ketadur.population.table import validate_population
from ketadur.protocols.io import load_protocol
from ketadur.protocols.schema import EndpointDefinition
from ketadur.trials import endpoints as ep
from ketadur.trials import survival as sv
from ketadur.trials.observe import (
    EVENT_COLUMNS,
    NOISELESS,
    TYPICAL_OBSERVATION,
    ObservationModel,
    Observations,
    Rater,
    observe,
)
from ketadur.trials.run import run_trial

RELAPSE_22 = EndpointDefinition(madrs_at_least=22, at_least=2, of_last=2, gap_days=(5, 15))
RESPONSE = EndpointDefinition(improvement_percent_at_least=50)


def _obs(rows: list[tuple[str, float, float]], arm: str = "a") -> Observations:
    visits = pd.DataFrame(
        [(s, arm, t, "madrs", v) for s, t, v in rows],
        columns=["subject_id", "arm", "t_days", "measure", "value"],
    )
    return Observations(visits, pd.DataFrame(columns=list(EVENT_COLUMNS)))


# ----------------------------------------------------------------------------- endpoints


def test_relapse_needs_two_consecutive_high_visits_within_the_gap():
    obs = _obs(
        [
            ("s1", 0, 30), ("s1", 7, 12), ("s1", 14, 23), ("s1", 21, 24),  # confirmed on day 21
            ("s2", 0, 30), ("s2", 7, 23), ("s2", 14, 12), ("s2", 21, 23),  # never two in a row
            ("s3", 0, 30), ("s3", 7, 23), ("s3", 30, 24),  # two high, but 23 days apart
        ]
    )  # fmt: skip
    # Follow-up from day 7 (e.g. first response); times are relative to it.
    tte = ep.time_to_event(obs, RELAPSE_22, from_day=7.0).set_index("subject_id")
    assert tte.loc["s1", "event"] and tte.loc["s1", "t_days"] == 14.0
    assert (tte.loc["s1", "lower_days"], tte.loc["s1", "upper_days"]) == (7.0, 14.0)
    assert not tte.loc["s2", "event"] and tte.loc["s2", "t_days"] == 14.0
    assert not tte.loc["s3", "event"] and np.isinf(tte.loc["s3", "upper_days"])


def test_relapse_at_the_first_visit_and_dropout_before_relapse():
    one_visit = EndpointDefinition(madrs_at_least=22)
    obs = _obs(
        [
            ("early", 0, 30), ("early", 7, 25), ("early", 14, 26),  # relapse at the first visit
            ("gone", 0, 30), ("gone", 7, 10), ("gone", 14, 12),  # dropped out after day 14
        ]
    )  # fmt: skip
    tte = ep.time_to_event(obs, one_visit, from_day=7.0).set_index("subject_id")
    assert tte.loc["early", "event"] and tte.loc["early", "t_days"] == 0.0
    assert tte.loc["early", "lower_days"] == 0.0
    assert not tte.loc["gone", "event"] and tte.loc["gone", "t_days"] == 7.0


def test_booster_needed_counts_a_booster_as_relapse():
    """Relapse = MADRS >= 22 on two visits, or a booster given by the rules, whichever is first."""
    obs = _obs(
        [
            ("boosted", 0, 30), ("boosted", 7, 12), ("boosted", 14, 18), ("boosted", 21, 14),
            ("late", 0, 30), ("late", 7, 12), ("late", 14, 23), ("late", 21, 24),
            ("none", 0, 30), ("none", 7, 12), ("none", 14, 12),
        ]
    )  # fmt: skip
    events = pd.DataFrame(
        [("boosted", "a", 16.0, "booster", "", "", 0.0),
         ("late", "a", 30.0, "booster", "", "", 0.0),
         ("none", "a", 3.0, "booster", "", "", 0.0)],  # before follow-up starts: ignored
        columns=list(EVENT_COLUMNS),
    )  # fmt: skip
    obs = Observations(obs.visits, events)
    either = RELAPSE_22.model_copy(update={"booster_needed": True})
    tte = ep.time_to_event(obs, either, from_day=7.0).set_index("subject_id")
    assert tte.loc["boosted", "event"] and tte.loc["boosted", "t_days"] == 9.0
    assert (tte.loc["boosted", "lower_days"], tte.loc["boosted", "upper_days"]) == (7.0, 9.0)
    assert tte.loc["late", "event"] and tte.loc["late", "t_days"] == 14.0  # MADRS first
    assert not tte.loc["none", "event"]
    # without booster_needed the booster is not an event
    plain = ep.time_to_event(obs, RELAPSE_22, from_day=7.0).set_index("subject_id")
    assert not plain.loc["boosted", "event"]
    # a booster-only definition: no visit ever qualifies
    only = EndpointDefinition(booster_needed=True)
    tte = ep.time_to_event(obs, only, from_day=7.0).set_index("subject_id")
    assert tte["event"].to_dict() == {"boosted": True, "late": True, "none": False}
    with pytest.raises(ValueError, match="booster_needed"):
        EndpointDefinition()


def test_adaptive_arms_record_booster_decisions():
    proto = load_protocol("booster_on_relapse")
    pop = generate_population("trd-adults", 6, seed=2)
    r = run_trial(proto, pop, seed=2)
    ev = r.observations.events
    boosters = ev[ev["kind"] == "booster"]
    doses = ev[ev["kind"] == "dose"]
    assert len(boosters) > 0
    # every booster decision is followed by a dose of that subject on or after its day, unless
    # the subject dropped out within the rule's 24-h delay
    dropouts = ev[ev["kind"] == "dropout"].set_index("subject_id")["t_days"]
    for _, b in boosters.iterrows():
        own = doses[doses["subject_id"] == b["subject_id"]]
        dosed = (own["t_days"] >= b["t_days"] - 1e-9).any()
        left = b["t_days"] <= dropouts.get(b["subject_id"], np.inf) < b["t_days"] + 1.0
        assert dosed != left, b["subject_id"]
    tte = ep.time_to_event(r.observations, EndpointDefinition(booster_needed=True), from_day=11.0)
    assert tte["event"].sum() == boosters[boosters["t_days"] >= 11.0]["subject_id"].nunique()


def test_adaptive_rules_decide_on_the_ratings_the_study_records():
    """A booster fires on an observed relapse: the ratings the runner decided on are the
    observation table's (same noise, same missed visits), not the model's exact MADRS."""
    proto = load_protocol("booster_on_relapse")
    arm = proto.arms[0]
    pop = validate_population(generate_population("trd-adults", 12, seed=1))
    table = run_trial(proto, pop, seed=4).observations.visits.query("measure == 'madrs'")
    raters = lambda k: Rater(TYPICAL_OBSERVATION, 4, k)  # noqa: E731
    runs = adaptive_runs(
        proto, arm, pop, seed=4, rater=raters, output_step_hours=24.0, dense_after_doses=False
    )
    compared, noisy, missed, boosters = 0, 0, 0, 0
    for row, run in runs:
        seen = run.assessments.query("measure == 'madrs'")
        recorded = table[table["subject_id"] == row["subject_id"]].set_index("t_days")["value"]
        kept = seen[seen["t_days"] <= recorded.index.max()]  # before dropout
        missed += int(kept["observed"].isna().sum())
        kept = kept.dropna(subset=["observed"])
        assert list(kept["t_days"]) == list(recorded.index)  # the same visits were missed
        assert np.array_equal(kept["observed"].to_numpy(), recorded.to_numpy())
        compared += len(kept)
        noisy += int((kept["observed"] != kept["value"]).sum())
        boosters += int((run.decisions["decision"] == "booster").sum())
    assert compared > 100 and noisy > compared // 2 and missed > 0 and boosters > 0


def test_blood_samples_become_visits_bdnf_with_assay_noise_ketamine_as_modelled():
    """Protocol 3's plasma BDNF samples and a PK study's plasma ketamine samples are recorded
    (a regression: BDNF samples were once dropped for a misspelt measure name); BDNF carries the
    assay's noise and a factor fixed per patient, ketamine none."""
    pop = validate_population(generate_population("trd-adults", 40, seed=2))
    bdnf_run = run_trial(load_protocol("protocol3_bdnf_sampling"), pop, seed=3)
    bdnf = bdnf_run.observations.measure("plasma_bdnf")
    truth = run_trial(
        load_protocol("protocol3_bdnf_sampling"), pop, seed=3, observation=NOISELESS
    ).observations.measure("plasma_bdnf")
    assert sorted(set(np.round(bdnf["t_days"] * 1440))) == [0.0, 240.0]
    merged = bdnf.merge(truth, on=["subject_id", "t_days"], suffixes=("", "_true"))
    log_ratio = np.log(merged["value"] / merged["value_true"])
    assert 0.4 < log_ratio.std() < 0.8  # between-subject CV 0.6 (log SD 0.55), assay CV 0.1
    within = log_ratio.groupby(merged["subject_id"]).agg(["size", "std"])
    within = within.loc[within["size"] == 2, "std"] * np.sqrt(2)  # SD of one visit's assay error
    assert len(within) >= 30 and 0.06 < within.mean() < 0.16  # bdnf_assay_cv 0.10
    pk = run_trial(load_protocol("pk_routes"), pop, seed=3, observation=NOISELESS)
    conc = pk.observations.measure("plasma_ketamine")
    assert set(conc["arm"]) == {"oral_0p5mg_per_kg", "iv_10mg"}
    assert (conc.groupby("arm")["value"].max() > 10.0).all()


def test_missing_visits_between_two_high_scores_still_count_as_consecutive_visits():
    # Day 14 was missed: the visits at days 7 and 21 are consecutive but 14 days apart.
    obs = _obs([("s", 0, 10), ("s", 7, 24), ("s", 21, 25)])
    assert ep.time_to_event(obs, RELAPSE_22)["event"].item()
    strict = RELAPSE_22.model_copy(update={"gap_days": (5.0, 10.0)})
    assert not ep.time_to_event(obs, strict)["event"].item()


def test_response_remission_rates_with_wilson_intervals():
    obs = _obs([("a", 0, 30), ("a", 7, 14), ("b", 0, 30), ("b", 7, 16), ("c", 0, 20), ("c", 7, 9)])
    r = ep.rate_by_visit(obs, RESPONSE, [7.0]).iloc[0]
    assert (r["n"], r["n_met"]) == (3, 2)
    lo, hi = ep.wilson_interval(np.array(2), np.array(3))
    # Wilson interval for 2/3 (z = 1.96): 0.2077 to 0.9385 (textbook value).
    assert (float(lo), float(hi)) == pytest.approx((0.2077, 0.9385), abs=1e-4)
    assert r["ci_low"] == pytest.approx(float(lo))
    remission = ep.rate_by_visit(obs, EndpointDefinition(madrs_at_most=10), [7.0]).iloc[0]
    assert remission["n_met"] == 1


def test_sustained_response_needs_every_visit_in_the_window():
    obs = _obs(
        [("a", 0, 30), ("a", 7, 14), ("a", 14, 14), ("b", 0, 30), ("b", 7, 14), ("b", 14, 20)]
    )
    s = ep.sustained(obs, RESPONSE, (7.0, 14.0)).set_index("subject_id")["met"]
    assert s["a"] and not s["b"]
    assert ep.ever_met(obs, RESPONSE, (7.0, 14.0)).set_index("subject_id")["met"].all()


# ----------------------------------------------------------------------------- statistics

# R reference (survival 3.5), computed once on the aml data shipped with the package:
#   library(survival)
#   survfit(Surv(time, status) ~ x, data = aml)          # medians: Maintained 31, Nonmaintained 23
#   survdiff(Surv(time, status) ~ x, data = aml)         # Chisq = 3.4 on 1 df, p = 0.07
#   coxph(Surv(time, status) ~ x, data = aml)            # coef 0.9155, exp(coef) 2.498, se 0.5119
AML = {
    "Maintained": ([9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161], [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]),
    "Nonmaintained": (
        [5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
    ),
}  # fmt: skip


def _aml() -> pd.DataFrame:
    rows = [(arm, t, bool(e)) for arm, (ts, es) in AML.items() for t, e in zip(ts, es, strict=True)]
    return pd.DataFrame(rows, columns=["arm", "t_days", "event"])


def test_km_logrank_and_cox_match_r_survival_on_aml():
    tte = _aml()
    assert sv.median_time(tte, "Maintained")["median"] == 31.0
    assert sv.median_time(tte, "Nonmaintained")["median"] == 23.0
    lr = sv.logrank(tte, "Nonmaintained", "Maintained")
    assert lr["statistic"] == pytest.approx(3.4, abs=0.05)
    assert lr["p_value"] == pytest.approx(0.07, abs=0.005)
    hr = sv.hazard_ratio(tte, "Nonmaintained", "Maintained")
    assert hr["hazard_ratio"] == pytest.approx(2.498, rel=2e-3)
    assert np.log(hr["ci_high"] / hr["hazard_ratio"]) / 1.959964 == pytest.approx(0.5119, rel=2e-3)
    table = sv.km_table(tte, "Maintained")
    assert (np.diff(table["survival"]) <= 0).all() and table["at_risk"].iloc[0] == 11


def test_interval_censored_relapse_fraction():
    # Two events known to lie in (0, 7] and (7, 14], one in (7, 14] again, two censored later.
    tte = pd.DataFrame(
        {"arm": "a", "event": [True, True, False, True, False], "t_days": [7, 14, 21, 14, 28],
         "lower_days": [0, 7, 21, 7, 28], "upper_days": [7, 14, np.inf, 14, np.inf]}
    )  # fmt: skip
    assert sv.interval_event_fraction_by(tte, "a", 3.0) == pytest.approx(0.0)
    assert sv.interval_event_fraction_by(tte, "a", 14.0) == pytest.approx(0.6)
    assert sv.interval_event_fraction_by(tte, "b", 14.0) is None


def test_nnt_and_missing_arms():
    assert sv.nnt(0.6, 0.4) == pytest.approx(5.0)
    assert sv.nnt(0.4, 0.4) is None
    assert sv.hazard_ratio(_aml(), "absent", "Maintained")["hazard_ratio"] is None


# ----------------------------------------------------------------------------- observation


def test_observation_noise_missed_visits_and_dropout_are_reproducible_per_patient():
    truth = _obs([(f"s{i}", t, 30.0 - t / 10) for i in range(40) for t in range(0, 180, 7)])
    model = ObservationModel(missed_visit_probability=0.2, dropout_per_week=0.02)
    a = observe(truth, model, seed=3)
    pd.testing.assert_frame_equal(a.visits, observe(truth, model, seed=3).visits)
    assert not a.visits.equals(observe(truth, model, seed=4).visits)
    assert (a.visits["value"] == a.visits["value"].round()).all()  # whole MADRS points
    assert (a.visits.groupby("subject_id")["t_days"].min() == 0).all()  # baseline never missed
    assert len(a.visits) < 0.85 * len(truth.visits)
    dropped = a.events[a.events["kind"] == "dropout"]
    assert 0 < len(dropped) < 40
    last = a.visits.groupby("subject_id")["t_days"].max()
    assert (last[dropped["subject_id"]].to_numpy() <= dropped["t_days"].to_numpy()).all()
    exact = observe(truth, NOISELESS, seed=3)
    pd.testing.assert_frame_equal(exact.visits, truth.visits, check_dtype=False)


def test_observations_refuse_tables_without_required_columns():
    with pytest.raises(KetadurInputError, match=r"visits\.measure"):
        Observations(pd.DataFrame({"subject_id": [], "arm": [], "t_days": [], "value": []}),
                      pd.DataFrame(columns=list(EVENT_COLUMNS)))  # fmt: skip


# ----------------------------------------------------------------------------- trials


@pytest.fixture(scope="module")
def demo_trial():
    pop = generate_population("trd-adults", 60, seed=5)
    return run_trial(load_protocol("durability_comparison"), pop, seed=5)


def test_same_seed_same_json_and_the_seeds_ordering(demo_trial):
    pop = generate_population("trd-adults", 60, seed=5)
    again = run_trial(
        load_protocol("durability_comparison"),
        pop,
        seed=5,
        arms=[a for a in demo_trial.endpoints],
    )
    assert json.dumps(again.to_json()) == json.dumps(demo_trial.to_json())
    e = {arm: v["endpoints"] for arm, v in demo_trial.endpoints.items()}
    # Repeated beats single; maintenance lowers relapse, monthly least. Weekly and 2-weekly
    # relapse about equally often on noisy ratings (300 patients, calibration 2026.11-5: 44.2
    # and 44.5 %); their order on the model's own MADRS is a phenomenon test.
    assert e["six_infusions"]["response_rate"]["28"] > e["single_infusion"]["response_rate"]["28"]
    relapse = {a: e[a]["relapse_rate"]["56"] for a in e}
    assert (
        max(relapse["weekly_maintenance"], relapse["every_2_weeks_maintenance"])
        < relapse["monthly_maintenance"]
    )
    assert relapse["monthly_maintenance"] <= relapse["six_infusions"]
    median = {a: e[a]["median_days_to_relapse"]["median"] for a in e}
    # KAP lengthens time to relapse: fewer relapses by week 26, and a median no shorter (medians
    # fall on weekly visits, so 60 patients per arm can tie them)
    late = {a: e[a]["relapse_rate"]["182"] for a in e}
    assert late["kap_cbt"] < late["six_infusions"]
    assert median["kap_cbt"] >= median["six_infusions"]
    assert median["single_infusion_dusp6"] > median["single_infusion"]  # DUSP6 adjunct
    assert (
        e["weekly_maintenance"]["infusions_per_patient"]
        > e["six_infusions"]["infusions_per_patient"]
    )


def test_different_seed_different_patients_same_schema():
    pop = generate_population("trd-adults", 8, seed=1)
    proto = load_protocol("durability_comparison")
    a = run_trial(proto, pop, seed=1, arms=["single_infusion"]).to_json()
    b = run_trial(proto, generate_population("trd-adults", 8, seed=2), seed=2,
                  arms=["single_infusion"]).to_json()  # fmt: skip
    assert a != b
    assert a["arms"][0].keys() == b["arms"][0].keys()


def test_replicates_report_a_spread_and_bad_counts_are_refused():
    pop = generate_population("trd-adults", 12, seed=0)
    proto = load_protocol("durability_comparison")
    r = run_trial(proto, pop, seed=0, replicates=3, arms=["single_infusion", "six_infusions"])
    spread = r.to_json()["arms"][1]["replicate_spread"]["response_rate"]["7"]
    assert spread["p05"] <= spread["median"] <= spread["p95"]
    with pytest.raises(KetadurInputError, match="replicates"):
        run_trial(proto, pop, replicates=0)


def test_cli_trial_json_report_and_tables(tmp_path, cli):
    proc = cli(
        "trial", "protocol1_single_infusion", "--patients", "10", "--seed", "2", "--json",
        "--report", "r.html", "--out", "tables", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["protocol"] == "protocol1_single_infusion" and doc["seed"] == 2
    assert set(doc["arms"][0]["endpoints"]) >= {"response_rate", "relapse_rate", "hazard_ratio_vs"}
    html = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64" in html and "not a prediction for any real patient" in html
    assert (tmp_path / "tables" / "visits.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trial", "no_such_protocol"), "protocol"),
        (("trial", "protocol1_single_infusion", "--patients", "0"), "--patients"),
        (("trial", "protocol1_single_infusion", "--replicates", "0"), "--replicates"),
        (("trial", "protocol1_single_infusion", "--report", "r.pdf"), "--report"),
        (("trial", "dusp6_adjunct_without_madrs.yaml"), "madrs"),
    ],
)
def test_cli_trial_bad_input_exit_2(tmp_path, args, message, refused):
    text = load_protocol("protocol1_single_infusion").model_dump(mode="json", exclude_none=True)
    for arm in text["arms"]:
        for phase in arm["phases"]:
            phase["assessments"] = [{"measures": ["bdnf"], "minutes_after": [0, 240],
                                     "anchor": "first_infusion"}]  # fmt: skip
    import yaml

    (tmp_path / "dusp6_adjunct_without_madrs.yaml").write_text(yaml.safe_dump(text))
    refused(*args, message=message)
