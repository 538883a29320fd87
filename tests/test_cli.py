"""The command line as a user meets it: fresh output folder, real commands, exit codes."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from ketadur import REGISTRY


def test_demo_prints_table_and_writes_report(tmp_path, cli):
    proc = cli("demo", "--patients", "8", "--replicates", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("single_infusion", "weekly_maintenance", "single_infusion_dusp6", "Research use"):
        assert name in proc.stdout
    # each rate with the 5-95 % range of the replicate trials, in the table and the report
    assert re.search(r"\d+ \(\d+-\d+\)", proc.stdout)
    assert "3 replicate trials of 8 per arm" in " ".join(proc.stdout.split())
    html = (tmp_path / "ketadur-demo.html").read_text()
    assert html.count("data:image/png;base64") == 4
    assert re.search(r"<td>\d+ \(\d+-\d+\)</td>", html)


def test_demo_json_has_every_arm(tmp_path, cli):
    proc = cli(
        "demo", "--patients", "5", "--replicates", "2", "--json", "--report", "d.html",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["arms"]) == 10 and doc["protocol"] == "durability_comparison"
    assert all("replicate_spread" in arm for arm in doc["arms"])
    assert (tmp_path / "d.html").exists()


def test_params_lists_every_parameter(tmp_path, cli):
    proc = cli("params", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p["name"] for p in json.loads(proc.stdout)} == set(REGISTRY)
    table = cli("params", cwd=tmp_path)
    assert table.returncode == 0 and "k10_per_min" in table.stdout


def test_simulate_writes_table_and_plot(tmp_path, cli):
    proc = cli(
        "simulate",
        "--regimen",
        "six",
        "--days",
        "30",
        "--out",
        "t.csv",
        "--plot",
        "p.png",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert 100 < summary["peak_plasma_ketamine_ng_per_ml"] < 250
    assert (tmp_path / "t.csv").read_text().startswith("t_days,")
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_diagram_dot(tmp_path, cli):
    proc = cli("diagram", "--out", "c.dot", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dusp6 -> erk [arrowhead=tee]" in (tmp_path / "c.dot").read_text()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("simulate", "--weight-kg", "500"), "weight_kg"),
        (("simulate", "--bogus"), "--bogus"),
        (("simulate", "--infusion-days", "0,a"), "--infusion-days"),
        (("simulate", "--dusp6-window", "5"), "--dusp6-window"),
        (("simulate", "--dusp6-window", "5:1"), "end_day"),
        (("simulate", "--regimen", "weekly"), "--regimen"),
        (("simulate", "--out", "t.parquet"), "--out"),
        (("params", "--group", "nope"), "--group"),
        (("demo", "--report", "fig.txt"), "--report"),
        (("demo", "--patients", "-1"), "--patients"),
        (("demo", "--replicates", "0"), "--replicates"),
        (("nonsense",), "nonsense"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, fragment, cli):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and fragment in lines[0]


def test_protocols_list_show_events_run_and_diagram(tmp_path, cli):
    listed = json.loads(cli("protocols", "list", "--json", cwd=tmp_path, expect=0).stdout)
    assert {"protocol1_single_infusion", "sustain1"} <= {p["name"] for p in listed}
    shown = cli("protocols", "show", "protocol2_kap_cbt", cwd=tmp_path, expect=0).stdout
    assert "24-48 h after the first infusion" in shown
    proc = cli(
        "protocols", "events", "protocol1_single_infusion", "--weight-kg", "80",
        "--nonmem", "ev.csv", cwd=tmp_path, expect=0,
    )  # fmt: skip
    assert "infusion_start" in proc.stdout and "40.0" in proc.stdout
    header = (tmp_path / "ev.csv").read_text().splitlines()[0]
    assert header.startswith("ID,TIME,EVID,AMT,RATE,CMT,DV,MDV")
    run = json.loads(
        cli("protocols", "run", "booster_on_relapse", "--json", cwd=tmp_path, expect=0).stdout
    )
    assert run["doses"] > 6 and any(d["decision"] == "booster" for d in run["decisions"])
    cli("protocols", "diagram", "sustain1", "--out", "s.svg", cwd=tmp_path, expect=0)
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("protocols", "show", "no_such_protocol"), "protocol: neither a YAML file"),
        (("protocols", "events", "sustain1", "--arm", "x"), "arm: no such arm"),
        (("protocols", "events", "sustain1", "--weight-kg", "5"), "patient.weight_kg"),
        (("protocols", "diagram", "sustain1", "--out", "x.gif"), "--out"),
    ],
)
def test_protocols_bad_input_one_line_exit_2(tmp_path, args, fragment, cli):
    proc = cli(*args, cwd=tmp_path, expect=2)
    assert fragment in proc.stderr and "Traceback" not in proc.stderr


def test_population_and_population_simulation_commands(tmp_path, cli):
    pop = tmp_path / "pop.parquet"
    assert (
        cli(
            "population", "--patients", "6", "--seed", "2", "--out", str(pop), cwd=tmp_path
        ).returncode
        == 0
    )
    table = pd.read_parquet(pop)
    assert len(table) == 6 and "k10_per_min" in table.columns
    sim = tmp_path / "sim.csv"
    res = cli(
        "simulate", "protocol1_single_infusion", "--population", str(pop),
        "--outputs", "madrs,structural", "--days", "7", "--out", str(sim), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(sim)
    assert list(out.columns) == ["subject_id", "arm", "t_days", "madrs", "structural"]
    assert len(out) == 6 * 8
    assert (out.query("t_days == 1").madrs < out.query("t_days == 0").madrs.to_numpy()).all()
    # stderr is a pipe here, not a terminal: the progress comes as plain lines, the last at the
    # end (a run under nohup or in CI would otherwise show nothing until it finishes)
    progress = [line for line in res.stderr.splitlines() if " of 6 (" in line]
    assert progress and progress[-1].startswith("simulating patients: 6 of 6 ("), res.stderr


def test_plain_progress_lines_write_counts_in_full(monkeypatch) -> None:
    """A million patients read 1,000,000 in a log, not 1e+06."""
    import io

    from rich.console import Console

    from ketadur import cli_common

    log = io.StringIO()
    monkeypatch.setattr(cli_common, "err_console", Console(file=log, force_terminal=False))
    bar = cli_common.progress_bar()
    task = bar.add_task("simulating patients", total=1_000_000)
    bar.update(task, completed=256_000)
    bar.update(task, completed=1_000_000)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("simulating patients: 256,000 of 1,000,000 ("), lines
    assert lines[-1].startswith("simulating patients: 1,000,000 of 1,000,000 ("), lines


@pytest.mark.parametrize(
    "args",
    [
        ("population", "no-such-preset"),
        ("population", "--patients", "0"),
        ("population", "--out", "x.txt"),
        ("simulate", "protocol1_single_infusion", "--population", "nope", "--out", "a.csv"),
        ("simulate", "protocol1_single_infusion", "--days", "0", "--out", "a.csv"),
        ("simulate", "protocol1_single_infusion", "--patients", "-3", "--out", "a.csv"),
        ("simulate", "protocol1_single_infusion", "--out", "/no/such/folder/a.csv"),
    ],
)
def test_population_commands_reject_bad_input_with_exit_2(args, tmp_path, cli):
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error:") and "Traceback" not in res.stderr


def test_simulate_names_a_bad_row_of_a_population_file_and_writes_nothing(tmp_path, cli):
    pop = tmp_path / "pop.csv"
    assert cli("population", "--patients", "5", "--out", str(pop), cwd=tmp_path).returncode == 0
    table = pd.read_csv(pop)
    table.loc[4, "baseline_madrs"] = 80.0
    table.to_csv(pop, index=False)
    res = cli(
        "simulate", "protocol1_single_infusion", "--population", str(pop), "--chunk-size", "2",
        "--days", "3", "--out", "sim.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "population.baseline_madrs" in res.stderr and "V0000004" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop.csv"]
