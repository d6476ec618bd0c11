"""Helpers for runtime tests that start child processes."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: repository root importable, no colour, wide lines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_cli(*args: str, cwd: pathlib.Path | None = None, timeout: float = 120):
    """``rlwb ARGS`` in a fresh interpreter (``python -m rlwb.cli``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "rlwb.cli", *args],
        cwd=cwd or ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
