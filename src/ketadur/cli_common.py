"""What every ``ketadur`` command shares: consoles, the disclaimer, output-path checks, figures."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ketadur.errors import KetadurInputError

console = Console()
err_console = Console(stderr=True)

DISCLAIMER = "Research use only: model-based hypotheses, not dosing instructions."
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_suffix(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    """Refuse an output file whose suffix is not one of ``suffixes`` (before any work is done)."""
    if path is not None and path.suffix.lower() not in suffixes:
        raise KetadurInputError(option, f"file must end in {', '.join(suffixes)}", str(path))


def check_figure_path(path: Path | None, option: str) -> None:
    """Refuse a figure file that matplotlib would not write as .png, .svg or .pdf."""
    check_suffix(path, FIGURE_SUFFIXES, option)


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def check_writable_folder(path: Path, option: str) -> None:
    """Refuse an output file whose folder is missing or not writable (before any work)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise KetadurInputError(option, "folder does not exist or is not writable", str(path))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, then rename it over ``path``: a
    partial file never looks complete."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def check_count(value: int, option: str) -> None:
    """Refuse a count (patients, replicates, ...) that is not a positive integer."""
    if value <= 0:
        raise KetadurInputError(option, "must be a positive integer", value)


def check_seed(seed: int) -> None:
    """Refuse a negative seed (NumPy seeds are non-negative)."""
    if seed < 0:
        raise KetadurInputError("--seed", "must be a non-negative integer", seed)


def progress_bar(*, remaining: bool = True) -> Progress:
    """The CLI's transient progress bar on stderr: description, bar, done/total, and time
    remaining (or elapsed, when the total is not known ahead)."""
    clock = TimeRemainingColumn() if remaining else TimeElapsedColumn()
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        clock,
        console=err_console,
        transient=True,
    )
