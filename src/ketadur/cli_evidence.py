"""``ketadur validate``: the model against every published target, with predictive intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from ketadur.cli_common import (
    DISCLAIMER,
    check_count,
    check_seed,
    check_suffix,
    check_writable_folder,
    console,
    err_console,
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
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("simulating designs", total=None)

        def progress(design: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"done {design}")

        result = validate(seed=seed, pool=pool, replicates=replicates, only=only, progress=progress)
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
    ) -> None:
        """Run every published target's design and compare the model with what was published."""
        run_validate(
            seed=seed, pool=pool, replicates=replicates, only=only, as_json=as_json,
            report=report,
        )  # fmt: skip
