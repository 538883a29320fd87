"""Evidence library, predictive intervals and ``ketadur validate``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ketadur.cli import app
from ketadur.evidence.phenomena import PHENOMENA, typical_runs
from ketadur.evidence.predict import _replicate_value, per_subject, predict, simulate_design
from ketadur.evidence.schema import (
    Quantity,
    Reproduced,
    Target,
    Uncertainty,
    load_targets,
    published_entries,
    seed_rows,
)
from ketadur.evidence.validate import phenomena_rows, validate
from ketadur.model.parameters import ParameterSet
from ketadur.protocols.io import load_protocol
from ketadur.trials.run import endpoint_definitions

TARGETS = load_targets()


def test_every_published_entry_is_reproduced_or_has_a_reason():
    assert len(TARGETS) == len(published_entries())
    for t in TARGETS:
        if t.how is None:
            assert t.reason and t.reason != "not mapped yet", t.id


@pytest.mark.parametrize("target", [t for t in TARGETS if t.how], ids=lambda t: t.id)
def test_reproduced_targets_point_at_runnable_designs(target: Target):
    how = target.how
    protocol = load_protocol(how.protocol)
    names = {a.name for a in protocol.arms}
    q = how.quantity
    assert set(q.arms) <= names
    assert q.reference_arm is None or q.reference_arm in names
    defs = {**endpoint_definitions(protocol), **how.endpoints}
    for name in (q.endpoint, q.among.endpoint):
        assert name is None or name in defs
    published = target.published.value
    if isinstance(published, int | float):  # the mapped value is the published one (sign aside)
        assert abs(how.value) == pytest.approx(abs(published))


def test_seed_tables_point_at_known_targets():
    ids = {t.id for t in TARGETS}
    rows = seed_rows()
    assert {r.table for r in rows} == {1, 2}
    for r in rows:
        assert set(r.targets) <= ids
        assert r.targets or r.note  # a row without a number says why


def test_uncertainty_intervals():
    # Wilson 95 % interval of 8/16 (reference: 0.280 to 0.720)
    low, high = Uncertainty(n=16).interval(50.0, "%")
    assert (low, high) == pytest.approx((28.00, 72.00), abs=0.01)
    low, high = Uncertainty(sd=11.2, n=138).interval(16.0, "mmHg")
    assert high - 16.0 == pytest.approx(1.959964 * 11.2 / np.sqrt(138))
    assert Uncertainty(ci95=(0.29, 0.84)).interval(0.49, "HR") == (0.29, 0.84)
    assert Uncertainty().interval(3.0, "days") == (None, None)


def test_quantity_schema_names_what_is_missing():
    with pytest.raises(ValidationError, match="exactly one of day or window_days"):
        Quantity(kind="rate", arms=("a",), endpoint="response")
    with pytest.raises(ValidationError, match="needs 'reference_arm'"):
        Quantity(kind="hazard_ratio", arms=("a",), endpoint="relapse")
    with pytest.raises(ValidationError, match=r"needs among\.phase"):
        Quantity(kind="relapse_fraction", arms=("a",), endpoint="relapse", from_day="phase")


def _rate_target(n: int) -> Target:
    how = Reproduced(
        id="han2016_response_24h",
        protocol="protocol1_single_infusion",
        quantity=Quantity(kind="rate", arms=("ketamine",), endpoint="response", day=1),
        value=52.2,
        unit="%",
        trial_patients=n,
    )
    return Target(published=published_entries()["han2016_response_24h"], how=how)


def test_replicated_rate_has_binomial_spread():
    # A pool where exactly 40 % respond: replicated trials of 100 have median ~40 % and a 90 %
    # interval of about +-1.645 * sqrt(0.4 * 0.6 / 100) = +-8 points.
    pool = pd.DataFrame(
        {"arm": "ketamine", "subject_id": [f"S{i}" for i in range(1000)], "selected": True,
         "value": np.where(np.arange(1000) < 400, 100.0, 0.0)}
    )  # fmt: skip
    p = predict(_rate_target(100), pool, replicates=2000, seed=1)
    assert p.median == pytest.approx(40.0, abs=1.0)
    assert p.p95 - p.p05 == pytest.approx(2 * 1.645 * np.sqrt(0.24 / 100) * 100, rel=0.15)
    again = predict(_rate_target(100), pool, replicates=2000, seed=1)
    assert np.array_equal(p.values, again.values)


def _or_rows(met: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Subjects per arm: (meeting the endpoint, not meeting it)."""
    rows = []
    for arm, (yes, no) in met.items():
        rows += [{"arm": arm, "value": 100.0, "selected": True}] * yes
        rows += [{"arm": arm, "value": 0.0, "selected": True}] * no
    return pd.DataFrame(rows)


def test_odds_ratio_by_hand():
    q = Quantity(
        kind="odds_ratio", arms=("ketamine",), reference_arm="midazolam", endpoint="response", day=1
    )
    # 30 of 50 vs 10 of 50: (30/20) / (10/40) = 6
    assert _replicate_value(q, _or_rows({"ketamine": (30, 20), "midazolam": (10, 40)})) == 6.0
    # an empty cell: 0.5 added to every cell, (20.5/0.5) / (5.5/15.5)
    value = _replicate_value(q, _or_rows({"ketamine": (20, 0), "midazolam": (5, 15)}))
    assert value == pytest.approx((20.5 / 0.5) / (5.5 / 15.5))
    # an arm without subjects gives no estimate
    assert np.isnan(_replicate_value(q, _or_rows({"ketamine": (3, 2)})))
    with pytest.raises(ValidationError, match="needs 'reference_arm'"):
        Quantity(kind="odds_ratio", arms=("a",), endpoint="response", day=1)


def test_madrs_change_difference_by_hand():
    q = Quantity(kind="madrs_change_difference", arms=("esk",), reference_arm="pbo", day=1)
    rows = pd.DataFrame(
        {"arm": ["esk", "esk", "pbo", "pbo"], "value": [-16.0, -14.0, -12.0, -10.0],
         "selected": True}
    )  # fmt: skip
    assert _replicate_value(q, rows) == -4.0  # -15 - (-11)
    assert np.isnan(_replicate_value(q, rows[rows["arm"] == "esk"]))


def test_observed_smd_change_by_hand():
    q = Quantity(kind="observed_smd_change", arms=("k",), output="plasma_bdnf_ng_per_ml",
                 minutes=240)  # fmt: skip
    rows = pd.DataFrame({"before": [8.0, 10.0, 12.0], "after": [9.0, 12.0, 15.0]})
    rows["value"] = rows["after"] - rows["before"]
    # means 10 and 12; variances 4 and 9, pooled SD sqrt(6.5)
    assert _replicate_value(q, rows) == pytest.approx(2.0 / np.sqrt(6.5))
    assert np.isnan(_replicate_value(q, rows.iloc[:1]))


def test_peak_and_non_responder_selection_on_their_designs():
    """A Cmax is the highest concentration, not the last; non-responders at 24 h are the rated
    patients who did not respond, disjoint from the responders and together all rated ones."""
    targets = {t.published.id: t for t in load_targets()}
    oral = targets["zanos2018_oral_Cmax"].how
    design = simulate_design("pk_routes", "trd-adults", list(oral.quantity.arms), patients=8,
                             seed=1)  # fmt: skip
    peak = per_subject(design, oral)
    late = oral.model_copy(update={"quantity": oral.quantity.model_copy(
        update={"kind": "output_mean"})})  # fmt: skip
    assert (peak["value"] > per_subject(design, late)["value"] * 1.2).all()  # 4 h later
    responders_ = targets["medeiros2022_BDNF_SMD_responders"].how
    others = targets["medeiros2022_BDNF_SMD_nonresponders"].how
    design = simulate_design("protocol3_bdnf_sampling", "trd-adults", ["ketamine"], patients=30,
                             seed=1)  # fmt: skip
    a = per_subject(design, responders_)
    b = per_subject(design, others)
    assert 0 < a["selected"].sum() < 30 and 0 < b["selected"].sum() < 30
    assert not (a["selected"] & b["selected"]).any()
    rated = design.observed.measure("madrs")
    rated = rated[(rated["t_days"] - 1.0).abs() < 0.01]["subject_id"]
    both = a["selected"] | b["selected"]  # less those missing a BDNF sample (5 % of visits)
    assert set(a.loc[both, "subject_id"]) <= set(rated) and both.sum() >= rated.nunique() - 4


def test_validate_one_design_is_reproducible_and_complete():
    a = validate(seed=3, pool=40, replicates=20, only=["protocol1_single_infusion"])
    b = validate(seed=3, pool=40, replicates=20, only=["protocol1_single_infusion"])
    assert a.to_json() == b.to_json()
    rows = [r for r in a.rows if r["status"] == "reproduced"]
    assert {r["protocol"] for r in rows} == {"protocol1_single_infusion"}
    for r in rows:
        assert r["model_p05"] <= r["model_median"] <= r["model_p95"]
        assert r["inside_90"] == (r["model_p05"] <= r["value"] <= r["model_p95"])
    cmax = next(r for r in rows if r["id"] == "zanos2018_Cmax_antidepressant_dose")
    assert 100 < cmax["model_median"] < 300  # ng/mL at the end of 0.5 mg/kg over 40 min
    # the report's course: the pool's response rate at each visit, day 1 being the whole pool's
    # statistic of the 24-h target (every subject rated, no replicate sampling)
    target = next(t for t in TARGETS if t.id == "han2016_response_24h")
    design = simulate_design("protocol1_single_infusion", "trd-adults", ["ketamine"],
                             patients=40, seed=3)  # fmt: skip
    pool_rate = _replicate_value(target.how.quantity, per_subject(design, target.how))
    points = dict(a.courses["han2016_response_24h"]["points"])
    assert points[1.0] == pytest.approx(pool_rate) and points[0.0] == 0.0


def test_report_course_figures_place_published_values():
    """Kaplan-Meier courses start event-free and never rise; a relapse fraction by a day sits at
    100 minus it, a median time at 50 % on the day scale."""
    from ketadur.reports.validation_report import _published_point, plot_courses

    result = validate(seed=1, pool=40, replicates=10, only=["wilkinson2017"])
    rows = {r["id"]: r for r in result.rows if r["status"] == "reproduced"}
    course = result.courses["wilkinson2017_relapse_8wk"]
    for curve in course["curves"].values():
        survival = [f for _, f in curve]
        assert survival[0] == 100.0 and np.all(np.diff(survival) <= 0)
    x, y, _, yerr = _published_point(rows["wilkinson2017_relapse_8wk"], course)
    assert (x, y) == (56.0, 75.0) and min(yerr) > 0
    x, y, xerr, _ = _published_point(rows["wilkinson2017_median_ttr"],
                                     result.courses["wilkinson2017_median_ttr"])  # fmt: skip
    assert (x, y) == (84.0, 50.0) and min(xerr) > 0
    assert plot_courses(list(rows.values()), result.courses) is not None
    assert plot_courses(list(rows.values()), {}) is None


def test_cli_validate_json_and_errors(tmp_path):
    runner = CliRunner()
    args = ["validate", "--only", "yale2024_SBP_peak_change", "--pool", "20", "--replicates", "5"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # progress lines go to stderr
    assert doc["summary"]["reproduced"] == 1
    assert doc["targets"][0]["id"] == "yale2024_SBP_peak_change"
    assert [p["id"] for p in doc["phenomena"]] == [p.id for p in PHENOMENA]
    report = tmp_path / "v.html"
    result = runner.invoke(app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "Seed phenomena on the calibrated typical patient" in result.output
    text = report.read_text()
    assert "data:image/png;base64" in text and "single_dose_fade" in text


def test_phenomena_rows_measure_the_typical_patient():
    """The validation's phenomena are the calibration's measures on the typical patient: reached
    exactly when the ratio meets its requirement; a potentiation that never fades misses the
    fade."""
    registry = ParameterSet.registry()
    runs = typical_runs(registry)
    rows = phenomena_rows(registry)
    for p, row in zip(PHENOMENA, rows, strict=True):
        assert row["id"] == p.id and row["value"] == pytest.approx(p.measure(runs))
        assert row["reached"] == (row["value"] >= p.required)
    stuck = registry.replace(potentiation_half_life_h=72.0, structural_half_life_days=21.0)
    fade = phenomena_rows(stuck)[0]
    assert fade["id"] == "single_dose_fade" and fade["value"] < 2.0 and not fade["reached"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--only", "no_such_target"), "--only"),
        (("--pool", "0"), "--pool"),
        (("--replicates", "-1"), "--replicates"),
        (("--report", "out.txt"), "--report"),
    ],
)
def test_cli_validate_bad_input_exits_2(args, message, refused):
    refused("validate", *args, message=message)


def test_duration_ratio_by_hand():
    q = Quantity(kind="duration_ratio", arms=("dusp6",), reference_arm="alone",
                 endpoint="response", day=1, until_day=112)  # fmt: skip
    rows = pd.DataFrame(
        {"arm": ["dusp6"] * 3 + ["alone"] * 4, "value": [20.0, 30.0, 111.0, 5.0, 8.0, 12.0, 111.0],
         "selected": True}
    )  # fmt: skip
    assert _replicate_value(q, rows) == pytest.approx(30.0 / 10.0)  # medians 30 and 10
    assert np.isnan(_replicate_value(q, rows[rows["arm"] == "dusp6"]))
    with pytest.raises(ValidationError, match="day < until_day"):
        Quantity(kind="duration_ratio", arms=("a",), reference_arm="b", endpoint="response",
                 day=10, until_day=5)  # fmt: skip


def test_duration_ratio_reads_each_patients_daily_trajectory():
    """Each responder's duration is the first whole day after day 1 with less than 50 %
    improvement on the model's MADRS, less 1; non-responders at day 1 are not counted."""
    from ketadur.engine.population import simulate_population

    how = next(t for t in TARGETS if t.id == "ma2025_duration_with_DUSP6_inhibition").how
    q = how.quantity
    design = simulate_design("dusp6_adjunct", "trd-adults", [*q.arms, q.reference_arm],
                             patients=6, seed=2)  # fmt: skip
    rows = per_subject(design, how).set_index(["arm", "subject_id"])
    for arm in (*q.arms, q.reference_arm):
        table = pd.concat(simulate_population(design.protocol, design.population, arm=arm,
                                              days=q.until_day, outputs=("madrs",)))  # fmt: skip
        for sid, traj in table.groupby("subject_id"):
            madrs = traj.set_index("t_days")["madrs"]
            kept = madrs <= 0.5 * madrs[0.0]
            row = rows.loc[(arm, sid)]
            if not kept[1.0]:
                assert not row["selected"] and np.isnan(row["value"])
                continue
            lost = [t for t in madrs.index if t > 1.0 and not kept[t]]
            expected = (lost[0] if lost else q.until_day) - 1.0
            assert row["selected"] and row["value"] == expected
    assert rows["selected"].any()


def test_shipped_calibration_meets_the_coverage_criterion():
    """The issue's criterion, on ``ketadur validate``'s defaults (seed 0, 400 patients, 200
    replicate trials, the calibrated point): at least 80 % of the calibration targets inside the
    model's 90 % predictive interval (the 26 fitted and the PK peak, which states no spread),
    and every seed phenomenon reached. 2026.12-3 has 22 of 27 (the least that passes); a model
    or calibration change that loses one fails here."""
    result = validate()
    judged = [r for r in result.rows if r["role"] == "calibration" and r["inside_90"] is not None]
    assert len(judged) == sum(t.how is not None and t.how.role == "calibration" for t in TARGETS)
    inside = sum(bool(r["inside_90"]) for r in judged)
    assert inside >= 0.8 * len(judged), [r["id"] for r in judged if not r["inside_90"]]
    assert all(p["reached"] for p in result.phenomena), result.phenomena
