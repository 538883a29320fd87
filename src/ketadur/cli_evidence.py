"""``ketadur validate``: the model against every published target, with predictive intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
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


def run_validate(
    *,
    seed: int,
    pool: int,
    replicates: int,
    only: list[str] | None,
    as_json: bool,
    report: Path | None,
    parameter_draws: int = 0,
):
    """Check the inputs, validate with a progress bar, then print and write the results."""
    from ketadur.evidence.schema import load_targets
    from ketadur.evidence.validate import validate
    from ketadur.reports.validation_report import validation_html

    check_seed(seed)
    check_count(pool, "--pool")
    check_count(replicates, "--replicates")
    if report is not None:
        check_suffix(report, (".html",), "--report")
        check_writable_folder(report, "--report")
    if only:
        targets = load_targets()
        known = {t.id for t in targets} | {t.how.protocol for t in targets if t.how is not None}
        unknown = [x for x in only if x not in known]
        if unknown:
            raise KetadurInputError("--only", "no such target id or target protocol", unknown[0])
    with progress_bar(remaining=False) as bar:
        task = bar.add_task("simulating designs", total=None)

        def progress(design: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"done {design}")

        result = validate(
            seed=seed, pool=pool, replicates=replicates, only=only,
            parameter_draws=parameter_draws, progress=progress,
        )  # fmt: skip
    if report is not None:
        write_text_atomic(report, validation_html(result))
    if as_json:
        print(json.dumps(result.to_json()))
        return result
    _print(result)
    if report is not None:
        console.print(f"Report written to {report}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")
    return result


def _print(result) -> None:
    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3g}"

    table = Table(title="Model vs published (90 % predictive interval over replicated trials)")
    for name in ("target", "published", "model median", "model 90 %", "inside"):
        table.add_column(name, overflow="fold")
    for r in result.rows:
        if r["status"] != "reproduced":
            continue
        table.add_row(
            r["id"],
            f"{f(r['value'])} {r['unit']}",
            f(r["model_median"]),
            f"{f(r['model_p05'])} to {f(r['model_p95'])}",
            "yes" if r["inside_90"] else "[red]no[/red]",
        )
    console.print(table)
    s = result.summary()
    share = "—" if s["fraction_inside"] is None else f"{100 * s['fraction_inside']:.0f} %"
    console.print(
        f"{s['inside_90']} of {s['reproduced']} reproduced targets inside the model's 90 % "
        f"interval ({share}); {s['published_entries'] - s['reproduced']} published entries "
        "not reproduced yet (reasons in the report and --json)."
    )
    reached = [p["id"] for p in result.phenomena if p["reached"]]
    missed = [p["id"] for p in result.phenomena if not p["reached"]]
    console.print(
        f"Seed phenomena on the calibrated typical patient: {len(reached)} of "
        f"{len(result.phenomena)} reached" + (f" (missed: {', '.join(missed)})." if missed else ".")
    )


def register(app: typer.Typer) -> None:
    """Add ``ketadur validate`` to ``app``."""

    @app.command("validate")
    def validate_cmd(
        seed: Annotated[int, typer.Option(help="Random seed (>= 0).")] = 0,
        pool: Annotated[int, typer.Option(help="Virtual patients simulated per design.")] = 400,
        replicates: Annotated[
            int, typer.Option(help="Replicated trials per target (published size each).")
        ] = 200,
        only: Annotated[
            list[str] | None,
            typer.Option(help="Only these target ids or protocols (repeatable)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
        report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
        parameter_draws: Annotated[
            int,
            typer.Option(
                help="Posterior parameter draws to include (0: calibrated point; K: K times "
                "the run time)."
            ),
        ] = 0,
    ) -> None:
        """Run every published target's design and compare the model with what was published."""
        run_validate(
            seed=seed, pool=pool, replicates=replicates, only=only, as_json=as_json,
            report=report, parameter_draws=parameter_draws,
        )  # fmt: skip


def run_calibrate(
    *,
    budget_minutes: float,
    seed: int,
    out: Path,
    pool: int,
    workers: int,
    targets: list[str] | None,
    phenomena: bool = True,
    start: Path | None = None,
):
    """Check the inputs, calibrate with a progress bar, write the calibration file."""
    import os

    from ketadur.evidence.calibrate import (
        SCALE_PARAMETERS,
        Objective,
        calibrate,
        calibration_targets,
        evaluations_for,
    )
    from ketadur.evidence.phenomena import PHENOMENA

    check_seed(seed)
    check_count(pool, "--pool")
    check_count(workers, "--workers")
    check_suffix(out, (".json",), "--out")
    check_writable_folder(out, "--out")
    evaluations = evaluations_for(budget_minutes)
    start_point = _start_point(start) if start is not None else None
    chosen = calibration_targets(targets)
    ids = {t.id for t in chosen}
    objective = Objective(
        chosen,
        pool=pool,
        seed=seed,
        phenomena=PHENOMENA if phenomena else (),
        scaled=tuple(s for s in SCALE_PARAMETERS if s.target in ids),
    )
    workers = min(workers, os.cpu_count() or 1)
    with progress_bar(remaining=False) as bar:
        task = bar.add_task("calibrating", total=evaluations)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        result = calibrate(
            objective,
            evaluations=evaluations,
            seed=seed,
            workers=workers,
            start=start_point,
            progress=progress,
        )
    write_text_atomic(out, json.dumps(result.document(), indent=1) + "\n")
    _print_calibration(result)
    console.print(f"Calibration written to {out}")
    return result


def _start_point(path: Path) -> dict:
    """The ``point`` of the calibration file at ``path`` (for ``--start``)."""
    try:
        point = json.loads(path.read_text())["point"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise KetadurInputError("--start", "is not a readable calibration file", str(path)) from err
    if not isinstance(point, dict):
        raise KetadurInputError("--start", "has no parameter point", str(path))
    return point


def _print_calibration(result) -> None:
    doc = result.document()
    table = Table(title="Calibrated parameters (prior centre, posterior mode, 90 % of draws)")
    for name in ("parameter", "prior centre", "mode", "posterior 90 %"):
        table.add_column(name)
    for f in result.free:
        post = doc["posterior"][f.key]
        table.add_row(
            f.key, f"{f.centre:.3g}", f"{result.point[f.key]:.3g}",
            f"{post['p05']:.3g} to {post['p95']:.3g}",
        )  # fmt: skip
    console.print(table)
    for key, target in doc["settings"]["solved"].items():
        console.print(f"{key} solved from {target}: {result.point[key]:.3g} at the mode")
    fits = Table(title="Targets at the mode (z: standardised residual)")
    for name in ("target", "published", "model", "z"):
        fits.add_column(name)
    for t in result.fits:
        model = "—" if t.model is None else f"{t.model:.3g}"
        fits.add_row(t.id, f"{t.published:.3g}", model, f"{t.z:+.2f}")
    console.print(fits)
    d = result.diagnostics
    console.print(
        f"chi2 at the mode {d['chi2_at_mode_untempered']:.1f} on {d['targets']} targets, "
        f"{d['free_parameters']} free parameters; importance ESS {d['importance_ess']:.1f} of "
        f"{d['importance_samples']}; {d['runtime_s']:.0f} s."
    )


def register_calibrate(app: typer.Typer) -> None:
    """Add ``ketadur calibrate`` to ``app``."""

    @app.command("calibrate")
    def calibrate_cmd(
        budget: Annotated[
            float, typer.Option(help="Budget in minutes on a 2-core machine (sets evaluations).")
        ] = 60.0,
        seed: Annotated[int, typer.Option(help="Random seed (>= 0).")] = 0,
        out: Annotated[Path, typer.Option(help="Calibration file to write (.json).")] = Path(
            "calibration.json"
        ),
        pool: Annotated[
            int,
            typer.Option(
                help="Virtual patients per adaptive design (fixed-schedule designs: a multiple)."
            ),
        ] = 100,
        workers: Annotated[
            int, typer.Option(help="Worker processes (results do not depend on it).")
        ] = 2,
        targets: Annotated[
            list[str] | None, typer.Option(help="Only these calibration target ids (repeatable).")
        ] = None,
        phenomena: Annotated[
            bool,
            typer.Option(
                help="Weigh the seed phenomena on the typical patient (a one-dose fade, six "
                "against one, the DUSP6 extension) as soft targets."
            ),
        ] = True,
        start: Annotated[
            Path | None,
            typer.Option(
                help="Calibration file whose point joins the initial design (e.g. the last "
                "calibration, after a model change)."
            ),
        ] = None,
    ) -> None:
        """Fit the population-level parameters to the published calibration targets."""
        run_calibrate(
            budget_minutes=budget, seed=seed, out=out, pool=pool, workers=workers,
            targets=targets, phenomena=phenomena, start=start,
        )  # fmt: skip
