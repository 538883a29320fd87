"""Virtual populations, population tables and the fast population engine."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest

from ketadur.engine.agreement import compare_arm
from ketadur.engine.population import simulate_population, write_chunks
from ketadur.errors import KetadurInputError
from ketadur.model.parameters import REGISTRY
from ketadur.population import generate
from ketadur.population.generate import generate_population
from ketadur.population.presets import PRESETS
from ketadur.population.table import read_population, validate_population, write_table
from ketadur.population.typical import ODDS_IIV, PopulationParameters
from ketadur.protocols.io import library_names, load_protocol


def test_patients_are_the_same_whole_or_in_shards():
    whole = generate_population("trd-adults", 6, seed=4)
    shard = generate_population("trd-adults", 3, seed=4, start=3)
    pd.testing.assert_frame_equal(whole.iloc[3:].reset_index(drop=True), shard)
    assert not whole.equals(generate_population("trd-adults", 6, seed=5))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_gives_valid_patients_with_every_parameter(preset):
    pop = generate_population(preset, 300, seed=1)
    checked = validate_population(pop)
    assert set(REGISTRY) <= set(checked.columns)
    spec = PRESETS[preset]
    assert spec.age_years.lower <= checked["age_years"].min()
    assert checked["age_years"].max() <= spec.age_years.upper
    # IIV is present where declared and absent elsewhere.
    assert checked["bdnf_release_gain"].std() > 0.1 * REGISTRY["bdnf_release_gain"].default
    assert checked["ki_s_ketamine_um"].nunique() == 1


def test_genotypes_follow_hardy_weinberg_at_the_met_frequency():
    pop = generate_population("trd-adults", 4000, seed=2)
    q = PRESETS["trd-adults"].met_allele_frequency
    freq = pop["bdnf_genotype"].value_counts(normalize=True)
    expected = {"val/val": (1 - q) ** 2, "val/met": 2 * q * (1 - q), "met/met": q * q}
    for genotype, p in expected.items():
        se = np.sqrt(p * (1 - p) / len(pop))
        assert abs(freq.get(genotype, 0.0) - p) < 4 * se


def test_older_adults_are_older_than_young_adults():
    old = generate_population("older-adults", 200, seed=3)
    young = generate_population("young-adults", 200, seed=3)
    assert old["age_years"].min() >= 65 > 30 >= young["age_years"].max()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda df: df.drop(columns="weight_kg"), "population"),
        (lambda df: df.assign(weight_kg=10.0), "population.weight_kg"),
        (lambda df: df.assign(bdnf_genotype="val/xyz"), "population.bdnf_genotype"),
        (lambda df: df.assign(subject_id="same"), "population.subject_id"),
        (lambda df: df.assign(subject_id="Jane Doe"), "population.subject_id"),
        (lambda df: df.assign(k10_per_min=1.0), "population.k10_per_min"),
        (lambda df: df.assign(life_events="3:abc"), "population.life_events"),
        (lambda df: df.assign(situational_madrs=59.0), "population.situational_madrs"),
        (
            lambda df: df.assign(background_antidepressant="maybe"),
            "population.background_antidepressant",
        ),
    ],
)
def test_bad_population_tables_name_the_column(edit, field):
    pop = generate_population("trd-adults", 3, seed=1)
    with pytest.raises(KetadurInputError) as err:
        validate_population(edit(pop))
    assert err.value.field == field


def test_a_table_of_covariates_only_gets_typical_parameters():
    table = pd.DataFrame(
        {
            "subject_id": ["a1", "a2"],
            "weight_kg": [60.0, 90.0],
            "age_years": [30.0, 50.0],
            "bdnf_genotype": ["val/val", "met/met"],
            "baseline_madrs": [30.0, 35.0],
        }
    )
    checked = validate_population(table)
    assert (checked["k10_per_min"] == REGISTRY["k10_per_min"].default).all()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_tables_round_trip_and_leave_no_partial_file(tmp_path, suffix):
    pop = generate_population("sustain1-like", 5, seed=9)
    path = write_table(pop, tmp_path / f"pop{suffix}")
    back = read_population(path)
    pd.testing.assert_frame_equal(validate_population(pop), back, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [f"pop{suffix}"]


def test_results_do_not_depend_on_chunking():
    """Bit for bit, and in order: chunks of a fixed arm are integrated while the next ones are
    drawn and prepared in other threads."""
    pop = generate_population("trd-adults", 5, seed=6)
    protocol = load_protocol("induction_thrice_weekly")
    one = pd.concat(
        simulate_population(protocol, pop, chunk_size=5, outputs=("madrs", "structural"))
    )
    many = pd.concat(
        simulate_population(protocol, pop, chunk_size=2, outputs=("madrs", "structural"))
    )
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True), many.reset_index(drop=True), check_exact=True
    )


def test_adaptive_arms_use_one_stream_per_patient():
    pop = generate_population("trd-adults", 4, seed=6)
    protocol = load_protocol("booster_on_relapse")
    whole = pd.concat(simulate_population(protocol, pop, chunk_size=4))
    tail = pd.concat(simulate_population(protocol, pop.iloc[2:], first_index=2))
    pd.testing.assert_frame_equal(
        whole[whole.subject_id.isin(pop.subject_id[2:])].reset_index(drop=True),
        tail.reset_index(drop=True),
    )


def test_interrupted_writes_leave_nothing_that_looks_complete(tmp_path):
    def chunks():
        yield pd.DataFrame({"subject_id": ["a"], "t_days": [0.0], "madrs": [30.0]})
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_chunks(chunks(), tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 4000}, "days"),
        ({"outputs": ("madrs", "happiness")}, "outputs"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_engine_arguments(kwargs, field):
    pop = generate_population("trd-adults", 2, seed=1)
    with pytest.raises(KetadurInputError) as err:
        next(simulate_population(load_protocol("protocol1_single_infusion"), pop, **kwargs))
    assert err.value.field == field


ARMS = [(name, arm.name) for name in library_names() for arm in load_protocol(name).arms]


@pytest.mark.parametrize(("name", "arm"), ARMS)
def test_fast_engine_agrees_with_the_reference_engine(name, arm):
    """Issue criterion on a CI-sized sample (benchmarks/agreement.py runs 200 patients): MADRS
    within 1e-3 relative or 0.05 points, synaptic states within 1e-3 relative, daily outputs."""
    pop = generate_population("trd-adults", 2, seed=zlib.crc32(name.encode()) % 1000)
    result = compare_arm(load_protocol(name), arm, pop)
    worst = result.sort_values("max_rel_diff").iloc[-1]
    assert result["within_tolerance"].all(), worst.to_dict()


def test_a_two_worker_dask_cluster_gives_the_single_process_result_bit_for_bit():
    from ketadur.engine.distributed import simulate_population_distributed
    from ketadur.population.source import DrawnPopulation

    pop = generate_population("trd-adults", 6, seed=8)
    fixed = load_protocol("induction_thrice_weekly")
    adaptive = load_protocol("booster_on_relapse")
    for protocol in (fixed, adaptive):
        single = pd.concat(simulate_population(protocol, pop, seed=5), ignore_index=True)
        spread = simulate_population_distributed(protocol, pop, shards=3, n_workers=2, seed=5)
        pd.testing.assert_frame_equal(single, spread, check_exact=True)
    # a drawn population travels as its recipe; each worker draws its own shard
    drawn = DrawnPopulation("trd-adults", 6, seed=8)
    spread = simulate_population_distributed(fixed, drawn, shards=3, n_workers=2, seed=5)
    single = pd.concat(simulate_population(fixed, pop, seed=5), ignore_index=True)
    pd.testing.assert_frame_equal(single, spread, check_exact=True)


def test_population_drawn_in_blocks_equals_one_block(monkeypatch):
    """Rows become a table a block at a time (bounded memory); the table must not change."""
    whole = generate_population("trd-adults", 23, seed=4, start=3)
    monkeypatch.setattr(generate, "_BLOCK_PATIENTS", 5)
    blocked = generate_population("trd-adults", 23, seed=4, start=3)
    pd.testing.assert_frame_equal(blocked, whole, check_exact=True)


def test_a_fraction_with_odds_iiv_is_logit_normal():
    """The refractory fraction's odds are log-normal: their log has the declared spread, and a
    large CV puts patients near both ends of (0, 1) rather than on the range's upper bound."""
    name = "madrs_refractory_fraction"
    assert name in ODDS_IIV
    typical = 0.1
    # 0.045: four standard errors of a sample SD of 4000 draws; 0.15 at CV 20, where the
    # range's bounds clip the tails
    for cv, sd_tol in ((0.3, 0.045), (20.0, 0.15)):
        params = PopulationParameters(typical={name: typical}, cv={name: cv}, label="test")
        x = generate_population("trd-adults", 4000, seed=6, parameters=params)[name].to_numpy()
        logit = np.log(x / (1 - x))
        sigma = np.sqrt(np.log1p(cv**2))
        assert abs(np.median(logit) - np.log(typical / (1 - typical))) < 0.1 * sigma
        assert abs(logit.std() - sigma) < sd_tol * sigma
    # CV 20 (logit SD 2.45): about a fifth above one half, the rest mostly well below it
    assert 0.15 < np.mean(x > 0.5) < 0.25
    assert np.mean(x < 0.1) > 0.45


def test_odds_cv_may_exceed_the_log_normal_limit():
    PopulationParameters(cv={"madrs_refractory_fraction": 50.0})
    with pytest.raises(KetadurInputError, match=r"cv\.relief_half_max"):
        PopulationParameters(cv={"relief_half_max": 50.0})
    with pytest.raises(KetadurInputError, match=r"cv\.madrs_refractory_fraction"):
        PopulationParameters(cv={"madrs_refractory_fraction": 101.0})


def test_a_drawn_population_is_the_generated_one_block_by_block(monkeypatch):
    """A preset drawn a chunk at a time (bounded memory) gives the patients of one draw, and
    never draws more than a chunk at once."""
    from ketadur.population import source

    sizes = []

    def recorded(*args, **kwargs):
        sizes.append(args[1])
        return generate_population(*args, **kwargs)

    monkeypatch.setattr(source, "generate_population", recorded)
    drawn = source.DrawnPopulation("trd-adults", 11, seed=4)
    blocks = list(drawn.blocks(4))
    assert [len(b) for b in blocks] == [4, 4, 3] and max(sizes) == 4
    whole = validate_population(generate_population("trd-adults", 11, seed=4))
    pd.testing.assert_frame_equal(pd.concat(blocks, ignore_index=True), whole, check_exact=True)
    shard = pd.concat(drawn.part(5, 9).blocks(10), ignore_index=True)
    pd.testing.assert_frame_equal(shard, whole.iloc[5:9].reset_index(drop=True))
    quiet = pd.concat(source.DrawnPopulation("trd-adults", 11, 4, life_events=False).blocks(11))
    assert (quiet["life_events"] == "").all() and (whole["life_events"] != "").any()
    pd.testing.assert_frame_equal(
        quiet.drop(columns="life_events"), whole.drop(columns="life_events"), check_exact=True
    )


def test_simulating_a_drawn_population_equals_simulating_its_table():
    from ketadur.population.source import DrawnPopulation

    protocol = load_protocol("induction_thrice_weekly")
    table = generate_population("trd-adults", 5, seed=6)
    drawn = DrawnPopulation("trd-adults", 5, seed=6)
    one = pd.concat(simulate_population(protocol, table, chunk_size=5), ignore_index=True)
    streamed = pd.concat(simulate_population(protocol, drawn, chunk_size=2), ignore_index=True)
    pd.testing.assert_frame_equal(one, streamed, check_exact=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_population_file_is_read_block_by_block(tmp_path, suffix, monkeypatch):
    from ketadur.population import source

    monkeypatch.setattr(source, "FILE_BLOCK_PATIENTS", 3)
    pop = generate_population("trd-adults", 8, seed=2)
    path = write_table(pop, tmp_path / f"pop{suffix}")
    whole = read_population(path)
    file = source.FilePopulation(path)
    file.check()
    assert len(file) == 8
    blocks = list(file.blocks(3))
    assert [len(b) for b in blocks] == [3, 3, 2]
    pd.testing.assert_frame_equal(pd.concat(blocks, ignore_index=True), whole, check_dtype=False)
    first = source.FilePopulation(path, limit=5)
    assert len(first) == 5
    assert pd.concat(first.blocks(2))["subject_id"].tolist() == pop["subject_id"][:5].tolist()
    part = pd.concat(file.part(2, 7).blocks(10), ignore_index=True)
    assert part["subject_id"].tolist() == pop["subject_id"][2:7].tolist()
    shards = [pd.concat(p.blocks(10))["subject_id"].tolist() for p in file.parts([0, 2, 7, 8])]
    assert shards == [pop["subject_id"][a:b].tolist() for a, b in ((0, 2), (2, 7), (7, 8))]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda df: df.assign(weight_kg=np.where(df.index == 7, 10.0, df.weight_kg)), "weight_kg"),
        (
            lambda df: df.assign(subject_id=df.subject_id.where(df.index != 7, "V0000001")),
            "subject_id",
        ),
    ],
)
def test_a_bad_row_late_in_a_population_file_is_found_before_the_run(
    tmp_path, edit, field, monkeypatch
):
    """The file is checked whole in one streaming pass: a bad value, or a subject id repeated
    in another block, is reported before any patient is simulated."""
    from ketadur.population import source

    monkeypatch.setattr(source, "FILE_BLOCK_PATIENTS", 3)
    path = write_table(edit(generate_population("trd-adults", 8, seed=2)), tmp_path / "p.csv")
    with pytest.raises(KetadurInputError) as err:
        next(
            simulate_population(
                load_protocol("protocol1_single_infusion"),
                source.FilePopulation(path),
                chunk_size=2,
            )
        )
    assert err.value.field == f"population.{field}"


def test_an_unreadable_population_file_names_the_population(tmp_path):
    from ketadur.population.source import FilePopulation

    path = tmp_path / "p.parquet"
    path.write_text("not parquet")
    with pytest.raises(KetadurInputError) as err:
        FilePopulation(path).check()
    assert err.value.field == "population"


def test_fast_engine_agrees_with_the_reference_engine_at_weekly_outputs():
    """The output grid must not set the accuracy: at weekly outputs (a trial's visits) the steps
    between doses are as long as the engine allows, and the lifestyle arm, whose tonic ERK keeps
    mTORC1 and potentiation going for months, is the most sensitive to them (5.8e-3 off in
    potentiation when each output time was stepped to and steps could reach 24 hours)."""
    from ketadur.engine.reference import simulate
    from ketadur.population.table import patient_of
    from ketadur.protocols.schedule import fixed_regimen

    name, arm = "durability_comparison", "induction_lifestyle"
    protocol = load_protocol(name)
    pop = validate_population(
        generate_population("trd-adults", 2, seed=zlib.crc32(name.encode()) % 1000)
    )
    days = np.arange(0.0, protocol.duration_days + 1e-9, 7.0)
    fast = pd.concat(
        simulate_population(
            protocol, pop, arm=arm, outputs=("potentiation", "madrs"), output_days=days
        )
    )
    regimen = fixed_regimen(protocol, protocol.arm(arm))
    for _, row in pop.iterrows():
        ref = simulate(
            regimen, patient_of(row), t_end_days=protocol.duration_days, output_days=days
        )
        mine = fast[fast["subject_id"] == row["subject_id"]]
        a, b = ref.table["potentiation"].to_numpy(), mine["potentiation"].to_numpy()
        assert np.all(np.abs(a - b) <= 1e-3 * np.abs(a) + 1e-6)
        assert np.abs(ref.table["madrs"].to_numpy() - mine["madrs"].to_numpy()).max() < 0.05
