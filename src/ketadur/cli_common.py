"""What every ``ketadur`` command shares: consoles, the disclaimer, output-path checks, figures."""

from __future__ import annotations

import os
import time
from pathlib import Path

from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
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


LOG_EVERY_S = 60.0
"""Seconds between the plain progress lines written where stderr is not a terminal."""


class _LoggedProgress(Progress):
    """A progress bar that, where stderr is not a terminal (a log file, ``nohup``, CI), writes a
    plain line per task at most every :data:`LOG_EVERY_S` seconds and when the task completes:
    the bar itself is drawn only on a terminal, and an hour's calibration would show nothing."""

    def __init__(self, *columns, **kwargs) -> None:
        super().__init__(*columns, **kwargs)
        self._logged_at: dict[TaskID, float] = {}

    def update(self, task_id: TaskID, **kwargs) -> None:
        super().update(task_id, **kwargs)
        if self.console.is_terminal:
            return
        task = next(t for t in self.tasks if t.id == task_id)
        now = time.monotonic()
        finished = task.total is not None and task.completed >= task.total
        if finished or now - self._logged_at.get(task_id, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[task_id] = now
            total = "?" if task.total is None else _count(task.total)
            elapsed = task.elapsed or 0.0
            self.console.print(
                f"{task.description}: {_count(task.completed)} of {total} ({elapsed:.0f} s)",
                highlight=False,
            )


def _count(x: float) -> str:
    """A progress count as people write it: 1,000,000 rather than 1e+06."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def progress_bar(*, remaining: bool = True) -> Progress:
    """The CLI's transient progress bar on stderr: description, bar, done/total, and time
    remaining (or elapsed, when the total is not known ahead); plain lines instead where stderr
    is not a terminal."""
    clock = TimeRemainingColumn() if remaining else TimeElapsedColumn()
    return _LoggedProgress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        clock,
        console=err_console,
        transient=True,
    )
