"""Shared test fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest


def _run_cli(*args: str, cwd, expect: int | None = None) -> subprocess.CompletedProcess:
    """``ketadur ARGS`` in a fresh process, as a user runs it (wide terminal, no PATH lookups)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ketadur.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={"COLUMNS": "120", "PATH": ""},
    )
    if expect is not None:
        assert proc.returncode == expect, proc.stderr
    return proc


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """Runs the command line: ``cli(*args, cwd=..., expect=None)``."""
    return _run_cli


@pytest.fixture
def refused(tmp_path) -> Callable[..., None]:
    """``refused(*args, message=...)``: the command exits with code 2 and a message naming the
    problem, never a traceback."""

    def check(*args: str, message: str) -> None:
        proc = _run_cli(*args, cwd=tmp_path, expect=2)
        assert message in proc.stderr and "Traceback" not in proc.stderr

    return check
