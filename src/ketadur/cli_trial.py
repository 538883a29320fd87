"""``ketadur trial`` and ``ketadur demo``: in-silico trials on a virtual population."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ketadur.cli_common import (
    DISCLAIMER,
    check_count,
    check_seed,
    check_suffix,
    check_writable_folder,
    console,
    progress_bar,
    write_text_atomic,
)
from ketadur.errors import KetadurInputError

DEMO_PROTOCOL = "durability_comparison"
DEMO_PATIENTS = 50
DEMO_REPLICATES = 10
"""The demo: 10 replicate trials of 50 patients per arm (5,000 patients over ten arms), each
replicate with its own posterior draw of the calibrated parameters, so every endpoint comes with
an interval that holds patient sampling and parameter uncertainty; under a minute on 2 cores."""


def run_trial_cmd(
    protocol_name: str,
    *,
    population: str,
    patients: int,
    replicates: int,
    seed: int,
    as_json: bool,
    report: Path | None,
    out: Path | None,
    title: str | None = None,
):
    """Check every input, run the trial with a progress bar, then print and write results."""
    from ketadur.cli_population import population_table
    from ketadur.population.generate import generate_replicates
    from ketadur.population.presets import PRESETS
    from ketadur.protocols.io import load_protocol
    from ketadur.reports.trial_report import trial_html
    from ketadur.trials.run import run_trial

    check_count(patients, "--patients")
    check_count(replicates, "--replicates")
    check_seed(seed)
    if report is not None:
        check_suffix(report, (".html",), "--report")
        check_writable_folder(report, "--report")
    if out is not None and out.exists() and not out.is_dir():
        raise KetadurInputError("--out", "must be a folder", str(out))
    protocol = load_protocol(protocol_name)
    check_assessed(protocol)
    if replicates > 1 and population in PRESETS:
        table = generate_replicates(population, patients, replicates, seed)
    else:
        table = population_table(population, patients * replicates, seed)
    n_arms = len(protocol.arms)
    with progress_bar() as bar:
        task = bar.add_task("simulating arms", total=n_arms * len(table))
        done_before: dict[str, int] = {}

        def progress(arm: str, done: int) -> None:
            done_before.setdefault(arm, len(done_before) * len(table))
            bar.update(task, completed=done_before[arm] + done, description=f"arm {arm}")

        result = run_trial(protocol, table, seed=seed, replicates=replicates, progress=progress)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result.observations.visits.to_csv(out / "visits.csv", index=False)
        result.observations.events.to_csv(out / "events.csv", index=False)
        result.time_to_relapse.to_csv(out / "time_to_relapse.csv", index=False)
        write_text_atomic(out / "endpoints.json", json.dumps(result.to_json(), indent=1))
    if report is not None:
        write_text_atomic(report, trial_html(result, title=title))
    if as_json:
        print(json.dumps(result.to_json()))
        return result
    _print_table(result)
    if report is not None:
        console.print(f"Report written to {report}")
    if out is not None:
        console.print(f"Tables written to {out}/")
    console.print(f"[dim]{DISCLAIMER}[/dim]")
    return result


def check_assessed(protocol) -> None:
    """Refuse a protocol whose endpoints need MADRS when some arm never assesses it."""
    from ketadur.protocols.schedule import plan_arm

    for arm in protocol.arms:
        measures = {
            m
            for plan in plan_arm(protocol, arm)
            for a in plan.phase.assessments
            for m in a.measures
        }
        if "madrs" not in measures:
            raise KetadurInputError(
                f"arms.{arm.name}",
                "endpoints are computed on MADRS visits, but this arm never assesses madrs",
            )


def _print_table(result) -> None:
    from ketadur.reports.trial_report import rate_cells

    first = result.settings.responder_window_days[1]
    spread = result.replicates > 1
    per_arm = result.n_patients // result.replicates
    caption = (
        f"% of patients seen at the visit; relapse (loss of response) among those who "
        f"responded by day {first:g}, Kaplan-Meier, days since first response"
    )
    if spread:
        caption += (
            f". Pooled over {result.replicates} replicate trials of {per_arm} per arm, each "
            f"with its own posterior parameter draw; in brackets the 5-95 % range of those "
            f"trials (patient sampling and parameter uncertainty)"
        )
    table = Table(
        title=f"{result.protocol.name}: {result.n_patients} virtual patients per arm, "
        f"seed {result.seed} ({result.runtime_s:.0f} s)",
        caption=caption,
    )
    e0 = next(iter(result.endpoints.values()))["endpoints"]
    days = "/".join(e0["response_rate"])
    relapse_days = "/".join(e0["relapse_rate"])
    if spread:  # one line per visit day, the columns kept whole; long arm names wrap
        sep = "\n"
        table.box = box.SIMPLE_HEAD
        table.collapse_padding = True
    else:
        sep = " / "
    table.add_column("arm", no_wrap=True)
    for name, whole, width in (
        (f"response %\nd{days}", spread, None),
        (f"remission %\nd{days}", spread, None),
        ("respon-\nders", False, 6),
        (f"relapse %\nby d{relapse_days}", spread, None),
        ("median\ndays to\nrelapse", False, 7),
        ("doses", False, 5),
    ):
        table.add_column(name, justify="right", overflow="fold", no_wrap=whole, min_width=width)
    for arm, values in result.endpoints.items():
        e = values["endpoints"]
        cells = rate_cells(values)
        median = e["median_days_to_relapse"]["median"]
        table.add_row(
            arm,
            sep.join(cells["response_rate"].values()),
            sep.join(cells["remission_rate"].values()),
            str(e["responders"]),
            sep.join(cells["relapse_rate"].values()),
            "not reached" if median is None else f"{median:g}",
            f"{e['infusions_per_patient']:.1f}",
        )
    # a terminal wraps the table to its width; a file or pipe gets it whole
    out = console if console.is_terminal else Console(width=max(console.width, 120))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``ketadur trial`` and ``ketadur demo`` to ``app``."""

    @app.command("trial")
    def trial(
        protocol: Annotated[str, typer.Argument(help="Library protocol name or YAML file.")],
        patients: Annotated[int, typer.Option(help="Patients per arm (per replicate).")] = 200,
        replicates: Annotated[
            int, typer.Option(help="Replicate trials of --patients each (spread of endpoints).")
        ] = 1,
        seed: Annotated[int, typer.Option(help="Random seed (>= 0).")] = 0,
        population: Annotated[
            str, typer.Option(help="Population preset or table (.parquet/.csv).")
        ] = "trd-adults",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
        report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
        out: Annotated[
            Path | None, typer.Option(help="Folder for visits, events and endpoint tables.")
        ] = None,
    ) -> None:
        """Run an in-silico trial: every arm on the same virtual patients, observed like a study."""
        run_trial_cmd(
            protocol, population=population, patients=patients, replicates=replicates,
            seed=seed, as_json=as_json, report=report, out=out,
        )  # fmt: skip

    @app.command("demo")
    def demo(
        patients: Annotated[
            int, typer.Option(help="Patients per arm in each replicate trial.")
        ] = DEMO_PATIENTS,
        replicates: Annotated[
            int,
            typer.Option(
                help="Replicate trials, each with its own posterior parameter draw (intervals)."
            ),
        ] = DEMO_REPLICATES,
        seed: Annotated[int, typer.Option(help="Random seed (>= 0).")] = 0,
        report: Annotated[Path, typer.Option(help="HTML report file.")] = Path("ketadur-demo.html"),
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """The main job: ten ways of giving ketamine compared on one virtual TRD population
        (single infusion, induction, maintenance, KAP, mindfulness, lifestyle, DUSP6 adjunct)."""
        run_trial_cmd(
            DEMO_PROTOCOL, population="trd-adults", patients=patients, replicates=replicates,
            seed=seed,
            as_json=as_json, report=report, out=None,
            title="ketadur demo: how to make ketamine's effect last",
        )  # fmt: skip
