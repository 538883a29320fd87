"""``ketadur protocols ...``: list, show, check, compile, run and draw treatment protocols."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from ketadur.cli_common import (
    DISCLAIMER,
    FIGURE_SUFFIXES,
    check_figure_path,
    check_suffix,
    console,
    save_figure,
)
from ketadur.errors import KetadurInputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Treatment protocols: the seed library and your own YAML files.",
)

ProtocolArg = Annotated[str, typer.Argument(help="Library protocol name or a .yaml file.")]
ArmOpt = Annotated[str | None, typer.Option(help="Arm name (default: the first arm).")]
PatientOpt = Annotated[
    Path | None, typer.Option(help="Patient covariates as a YAML/JSON file (Patient fields).")
]
WeightOpt = Annotated[
    float | None, typer.Option(help="Actual body weight, kg (overrides --patient).")
]


def _patient(path: Path | None, weight_kg: float | None):
    from pydantic import ValidationError

    from ketadur.errors import from_validation_error
    from ketadur.model.patient import Patient
    from ketadur.protocols.io import parse_yaml

    data: dict = {}
    if path is not None:
        if not path.is_file():
            raise KetadurInputError("--patient", "no such file", str(path))
        data = parse_yaml(path.read_text(encoding="utf-8"), path.name) or {}
        if not isinstance(data, dict):
            raise KetadurInputError("--patient", "must hold a mapping of Patient fields", path.name)
    if weight_kg is not None:
        data["weight_kg"] = weight_kg
    try:
        return Patient(**data)
    except ValidationError as exc:
        raise from_validation_error(exc, "patient") from None


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The protocols shipped with ketadur."""
    from ketadur.protocols.io import library

    protocols = library()
    if as_json:
        rows = [
            {
                "name": n,
                "evidence": p.evidence,
                "arms": [a.name for a in p.arms],
                "summary": p.summary,
            }
            for n, p in protocols.items()
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table("name", "evidence", "arms", "summary", show_lines=False)
    for name, p in protocols.items():
        table.add_row(name, p.evidence, str(len(p.arms)), p.summary)
    console.print(table)


@app.command()
def show(
    protocol: ProtocolArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated protocol.")] = False,
) -> None:
    """A protocol: citations, endpoint definitions, arms, phases, rules."""
    from ketadur.protocols.describe import entry_text, phase_lines
    from ketadur.protocols.io import load_protocol

    p = load_protocol(protocol)
    if as_json:
        console.print_json(p.model_dump_json())
        return
    console.print(f"[bold]{p.title}[/bold] ({p.name}; {p.evidence}; {p.duration_days:g} days)")
    console.print(p.summary)
    for c in p.citations:
        console.print(f"  - {c}", highlight=False)
    if p.endpoints:
        console.print("Endpoints:")
        for name, e in p.endpoints.items():
            console.print(f"  {name}: {e.description or e.model_dump(exclude_none=True)}")
    for arm in p.arms:
        tree = Tree(f"arm [bold]{arm.name}[/bold]")
        for phase in arm.phases:
            node = tree.add(
                f"{phase.name} ({phase.duration_days:g} d) - entry: {entry_text(phase.entry, p)}"
            )
            for line in phase_lines(phase):
                node.add(line)
        console.print(tree)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")],
) -> None:
    """Validate protocol files; the first problem is reported with its field path (exit 2)."""
    from ketadur.protocols.io import load_protocol

    for f in files:
        if not f.is_file():
            raise KetadurInputError("FILE", "no such file", str(f))
        p = load_protocol(f)
        n_phases = sum(len(a.phases) for a in p.arms)
        console.print(f"ok: {f} ({p.name}: {len(p.arms)} arms, {n_phases} phases)")


@app.command()
def events(
    protocol: ProtocolArg,
    arm: ArmOpt = None,
    patient: PatientOpt = None,
    weight_kg: WeightOpt = None,
    run: Annotated[
        bool, typer.Option(help="Simulate, applying entry criteria and adaptive rules.")
    ] = False,
    nonmem: Annotated[Path | None, typer.Option(help="Also write a NONMEM-style CSV.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the events table (.csv).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON.")] = False,
) -> None:
    """The compiled events of one arm for one patient (planned, or given with --run)."""
    from ketadur.protocols.io import load_protocol
    from ketadur.protocols.nonmem import to_nonmem, write_nonmem
    from ketadur.protocols.schedule import compile_protocol

    check_suffix(nonmem, (".csv",), "--nonmem")
    check_suffix(out, (".csv",), "--out")
    p = load_protocol(protocol)
    person = _patient(patient, weight_kg)
    observations = None
    if run:
        from ketadur.protocols.execute import run_protocol

        result = run_protocol(p, person, arm=arm)
        table, regimen = result.events_table(), result.regimen
        observations = result.assessments
    else:
        compiled = compile_protocol(p, person, arm)
        table, regimen = compiled.table(), compiled.regimen()
    if nonmem is not None:
        nonmem.parent.mkdir(parents=True, exist_ok=True)
        write_nonmem(to_nonmem(regimen, person, observations=observations), nonmem)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    if as_json:
        console.print_json(table.to_json(orient="records"))
        return
    shown = Table("day", "kind", "phase", "what", "mg", "mg/h", "source")
    for e in table.itertuples(index=False):
        what = " ".join(x for x in (e.drug, e.route, e.detail) if x)
        shown.add_row(
            f"{e.t_days:.3f}",
            e.kind,
            e.phase,
            what if e.kind != "phase_start" else "",
            f"{e.amount_mg:.1f}" if e.amount_mg else "",
            f"{e.rate_mg_per_h:.1f}" if e.rate_mg_per_h else "",
            e.source,
        )
    console.print(shown)
    n_doses = int(table["kind"].isin(["infusion_start", "bolus"]).sum())
    console.print(f"{len(table)} events, {n_doses} doses ({p.name}, arm {arm or p.arms[0].name})")
    for path, what in ((nonmem, "NONMEM dataset"), (out, "events table")):
        if path is not None:
            console.print(f"{what} written to {path}")


@app.command("run")
def run_cmd(
    protocol: ProtocolArg,
    arm: ArmOpt = None,
    patient: PatientOpt = None,
    weight_kg: WeightOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for randomised entry fractions.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the assessments (.csv).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a trajectory figure.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Simulate one patient through one arm, with entry criteria and adaptive rules."""
    from ketadur.protocols.execute import run_protocol
    from ketadur.protocols.io import load_protocol

    check_suffix(out, (".csv",), "--out")
    check_figure_path(plot, "--plot")
    p = load_protocol(protocol)
    result = run_protocol(p, _patient(patient, weight_kg), arm=arm, seed=seed)
    if result.result.status != "success":
        raise KetadurInputError("simulation", result.result.message)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.assessments.to_csv(out, index=False)
    if plot is not None:
        from ketadur.reports.plots import plot_trajectory

        save_figure(plot_trajectory(result.result), plot)
    madrs = result.assessments.query("measure == 'madrs'")
    summary = {
        "protocol": p.name,
        "arm": result.arm,
        "phases_entered": list(result.phases_entered),
        "doses": result.n_doses,
        "madrs": [
            [round(t, 3), round(v, 2)] for t, v in zip(madrs.t_days, madrs.value, strict=True)
        ],
        "decisions": result.decisions.to_dict(orient="records"),
    }
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"{p.name} / {result.arm}: {result.n_doses} doses; phases {summary['phases_entered']}"
    )
    for row in result.decisions.itertuples(index=False):
        console.print(f"  day {row.t_days:7.2f}  {row.decision:<22} {row.detail}", highlight=False)
    console.print("MADRS: " + ", ".join(f"d{t:g} {v:.1f}" for t, v in summary["madrs"]))
    console.print(f"[dim]{DISCLAIMER}[/dim]")


@app.command()
def diagram(
    protocol: ProtocolArg,
    out: Annotated[Path, typer.Option(help="Figure (.svg/.png/.pdf) or Graphviz (.dot).")] = Path(
        "protocol.svg"
    ),
) -> None:
    """Draw the protocol as a flowchart (phases, entry criteria, rules), from the file itself."""
    from ketadur.protocols.io import load_protocol
    from ketadur.reports.protocol_diagram import protocol_dot, protocol_figure

    check_suffix(out, (*FIGURE_SUFFIXES, ".dot"), "--out")
    p = load_protocol(protocol)
    if out.suffix.lower() == ".dot":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(protocol_dot(p), encoding="utf-8")
    else:
        save_figure(protocol_figure(p), out)
    console.print(f"diagram written to {out}")
