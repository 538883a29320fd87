"""The ``ketadur`` command line. Each command parses, calls the Python API, prints or saves."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.table import Table

from ketadur import __version__
from ketadur.cli_common import (
    DISCLAIMER,
    FIGURE_SUFFIXES,
    check_figure_path,
    check_suffix,
    console,
    err_console,
    save_figure,
)
from ketadur.cli_evidence import register as register_evidence
from ketadur.cli_evidence import register_calibrate
from ketadur.cli_population import register as register_population
from ketadur.cli_protocols import app as protocols_app
from ketadur.cli_sbml import register as register_sbml
from ketadur.cli_trial import register as register_trial
from ketadur.errors import KetadurInputError, from_validation_error
from ketadur.model.parameters import REGISTRY

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="ketadur: simulate how to make ketamine's antidepressant effect last. "
    "Research software: outputs are model-based hypotheses, never dosing instructions.",
)
app.add_typer(protocols_app, name="protocols")
register_population(app)
register_sbml(app)
register_trial(app)
register_evidence(app)
register_calibrate(app)


def _fmt_day(x: float) -> str:
    if math.isnan(x):
        return "no response"
    if math.isinf(x):
        return "not lost"
    return f"{x:.1f}"


@app.command()
def params(
    group: Annotated[str | None, typer.Option(help="Only this group (pk, cascade, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The parameter registry: name, value, unit, range, status and source."""
    groups = sorted({p.group for p in REGISTRY.values()})
    if group is not None and group not in groups:
        raise KetadurInputError("--group", f"must be one of {', '.join(groups)}", group)
    chosen = [p for p in REGISTRY.values() if group is None or p.group == group]
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "default": p.default,
                        "unit": p.unit,
                        "lower": p.lower,
                        "upper": p.upper,
                        "group": p.group,
                        "status": p.status,
                        "description": p.description,
                        "source": p.source,
                    }
                    for p in chosen
                ]
            )
        )
        return
    table = Table(title=f"ketadur {__version__} model parameters ({len(chosen)})", show_lines=False)
    for col in ("name", "default", "unit", "range", "status", "source"):
        table.add_column(col, overflow="fold")
    for p in chosen:
        table.add_row(
            p.name, f"{p.default:g}", p.unit, f"{p.lower:g}-{p.upper:g}", p.status, p.source
        )
    console.print(table)


def _parse_days(text: str, option: str) -> list[float]:
    try:
        days = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise KetadurInputError(option, "must be comma-separated numbers of days", text) from None
    if not days or any(d < 0 or not math.isfinite(d) for d in days):
        raise KetadurInputError(option, "must list at least one day, each >= 0", text)
    return days


def _parse_window(text: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        start, end = (float(x) for x in parts)
    except ValueError:
        raise KetadurInputError(
            "--dusp6-window", "must be START:END in days, e.g. 0:14", text
        ) from None
    return start, end


@app.command("simulate")
def simulate_cmd(
    protocol: Annotated[
        str | None,
        typer.Argument(
            help="Library protocol or YAML file: simulate a population with the fast engine "
            "(--population ...). Without it, one patient on a built-in regimen (reference engine)."
        ),
    ] = None,
    population: Annotated[
        str, typer.Option(help="Population: a preset name or a .parquet/.csv table.")
    ] = "trd-adults",
    patients: Annotated[
        int | None, typer.Option(help="Patients drawn from a preset (default 1000), or first N.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the population and protocol.")] = 0,
    arm: Annotated[str | None, typer.Option(help="Protocol arm (default: the first).")] = None,
    outputs: Annotated[str, typer.Option(help="Comma-separated outputs (population mode).")] = (
        "madrs"
    ),
    chunk_size: Annotated[int, typer.Option(help="Patients per chunk (population mode).")] = 2000,
    shards: Annotated[
        int, typer.Option(help="Split over a local Dask cluster in N shards (0: in process).")
    ] = 0,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address for an existing cluster.")
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            help="cpu, or gpu: a CUDA GPU integrates arms without adaptive elements "
            "(population mode; needs numba-cuda)."
        ),
    ] = "cpu",
    regimen: Annotated[
        Literal["single", "six", "six-cbt"],
        typer.Option(help="Built-in regimen, unless --infusion-days is given."),
    ] = "single",
    infusion_days: Annotated[
        str | None, typer.Option(help="IV infusions on these days, e.g. 0,2,4,7,9,11.")
    ] = None,
    dose_mg_per_kg: Annotated[float, typer.Option(help="IV dose, mg/kg actual weight.")] = 0.5,
    infusion_minutes: Annotated[float, typer.Option(help="Infusion length, minutes.")] = 40.0,
    cbt_days: Annotated[str | None, typer.Option(help="CBT sessions on these days.")] = None,
    dusp6_window: Annotated[
        str | None, typer.Option(help="DUSP6-inhibitor exposure START:END (days).")
    ] = None,
    weight_kg: Annotated[float, typer.Option(help="Actual body weight, kg.")] = 70.0,
    age_years: Annotated[float, typer.Option(help="Age, years.")] = 45.0,
    genotype: Annotated[
        Literal["val/val", "val/met", "met/met"], typer.Option(help="BDNF Val66Met.")
    ] = "val/val",
    baseline_madrs: Annotated[float, typer.Option(help="MADRS at day 0.")] = 32.0,
    tolerance_propensity: Annotated[float, typer.Option(help="1 = typical.")] = 1.0,
    trkb_deleted: Annotated[bool, typer.Option(help="Preclinical TrkB deletion.")] = False,
    days: Annotated[
        float | None, typer.Option(help="Simulated days (default 56, or the protocol's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the table (.csv; population mode .parquet/.csv).")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a 4-panel figure.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Simulate one patient with the reference engine, or a population on a protocol."""
    if protocol is not None:
        from ketadur.cli_population import simulate_population_cmd

        simulate_population_cmd(
            protocol,
            arm=arm,
            population=population,
            patients=patients,
            seed=seed,
            days=days,
            outputs=outputs,
            out=out,
            chunk_size=chunk_size,
            shards=shards,
            scheduler=scheduler,
            device=device,
        )
        return
    days = 56.0 if days is None else days
    from ketadur.demo import demo_regimens
    from ketadur.engine.reference import simulate
    from ketadur.model.patient import Patient
    from ketadur.regimen import AdjunctWindow, TherapySession, iv_infusions
    from ketadur.summaries import day_of_loss_of_response, madrs_at

    check_suffix(out, (".csv",), "--out")
    check_figure_path(plot, "--plot")
    if infusion_days is not None:
        reg = iv_infusions(
            _parse_days(infusion_days, "--infusion-days"),
            dose_mg_per_kg=dose_mg_per_kg,
            infusion_minutes=infusion_minutes,
        )
    else:
        reg = dict(zip(("single", "six", "six-cbt"), demo_regimens(), strict=True))[regimen]
    if cbt_days is not None:
        reg = reg.with_sessions(TherapySession(day=d) for d in _parse_days(cbt_days, "--cbt-days"))
    if dusp6_window is not None:
        start, end = _parse_window(dusp6_window)
        reg = reg.with_adjunct(AdjunctWindow(start_day=start, end_day=end))
    patient = Patient(
        weight_kg=weight_kg,
        age_years=age_years,
        bdnf_genotype=genotype,
        baseline_madrs=baseline_madrs,
        tolerance_propensity=tolerance_propensity,
        trkb_deleted=trkb_deleted,
    )
    result = simulate(reg, patient, t_end_days=days)
    if result.status != "success":
        err_console.print(f"error: {result.message}")
        raise typer.Exit(1)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.table.to_csv(out, index=False)
    if plot is not None:
        from ketadur.reports.plots import plot_trajectory

        save_figure(plot_trajectory(result), plot)
    report_days = [d for d in (1.0, 7.0, 14.0, 28.0, 56.0) if d <= days]
    summary = {
        "regimen": reg.name,
        "peak_plasma_ketamine_ng_per_ml": round(
            float(result.table["plasma_ketamine_ng_per_ml"].max()), 2
        ),
        "peak_cadss": round(float(result.table["cadss"].max()), 2),
        "madrs_by_day": {f"{d:g}": round(v, 2) for d, v in madrs_at(result, report_days).items()},
        "day_response_lost": day_of_loss_of_response(result, baseline_madrs=baseline_madrs),
        "model_hash": result.provenance["model_hash"],
    }
    if as_json:
        v = summary["day_response_lost"]
        summary["day_response_lost"] = None if math.isnan(v) or math.isinf(v) else round(v, 2)
        console.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        shown = _fmt_day(value) if key == "day_response_lost" else value
        console.print(f"{key}: {shown}")
    if out is not None:
        console.print(f"table written to {out}")
    if plot is not None:
        console.print(f"figure written to {plot}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command()
def diagram(
    out: Annotated[Path, typer.Option(help="Figure (.png/.svg/.pdf) or Graphviz (.dot).")] = Path(
        "ketadur-cascade.png"
    ),
) -> None:
    """Draw the signalling cascade from the model's own equations."""
    from ketadur.reports.diagram import cascade_edges, plot_cascade, to_dot

    check_suffix(out, (*FIGURE_SUFFIXES, ".dot"), "--out")
    edges = cascade_edges()
    if out.suffix.lower() == ".dot":
        out.write_text(to_dot(edges))
    else:
        save_figure(plot_cascade(edges), out)
    console.print(f"cascade diagram ({len(edges)} edges) written to {out}")


@app.command()
def version() -> None:
    """Print the ketadur version."""
    console.print(__version__)


def main() -> None:
    """Entry point: runs the app, turning input errors into one line and exit code 2."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")
    try:
        result = app(standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except KetadurInputError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:
        err_console.print(f"error: {from_validation_error(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        # Command-line usage errors (unknown option, bad choice, missing value): Typer raises
        # click-style exceptions with exit code 2 and a formatted message.
        if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
            err_console.print(f"error: {exc.format_message()}", highlight=False, soft_wrap=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
