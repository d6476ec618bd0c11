"""Measure benchmark contenders apart: each run in a fresh interpreter, in alternation.

Peers measured in one process distort each other: JAX's thread pools beside torch's, one
library's imports, allocator and compiled kernels in the other's way (the torch engine read
100x slower beside JAX than alone). :func:`run_apart` runs every contender as its own
``python rlwb/apart.py`` child, one at a time, and alternates them over ``rounds`` (the
order rotates each round), so drift in the machine's load falls on all of them alike.

A contender is a function named ``"package.module:function"`` or ``"path/to/file.py:function"``
and JSON keyword arguments; it returns JSON data (a rate, a row). Each record says which
process measured it (``pid``) and in which order (``position``), so a caller can show that
the contenders never shared one.

    python rlwb/apart.py '{"target": "rlwb.bench:bench_rlwb", "kwargs": {...}}'
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKER = "RLWB-APART-RESULT "


@dataclass(frozen=True)
class Contender:
    """One measurement to run in its own process."""

    name: str
    target: str
    """``"package.module:function"`` or ``"path/to/file.py:function"``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for its process (e.g. thread counts)."""


@dataclass
class Record:
    """What one run of a contender gave: ``value`` (its return) or ``error`` (one line)."""

    name: str
    round: int
    position: int
    pid: int | None
    value: Any = None
    error: str | None = None


def run_apart(
    contenders: list[Contender],
    rounds: int = 1,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Record]:
    """Run each contender ``rounds`` times, each run in a new interpreter, one after another;
    round r starts at contender r (mod the count). A failed run is a record with ``error``
    (a peer that cannot run here must not stop the others)."""
    records: list[Record] = []
    for r in range(max(1, rounds)):
        shift = r % len(contenders) if contenders else 0
        for contender in contenders[shift:] + contenders[:shift]:
            record = _run_one(contender, r, len(records), timeout)
            records.append(record)
            if log is not None:
                shown = record.error if record.error else _short(record.value)
                log(f"  {contender.name} (round {r + 1}, pid {record.pid}): {shown}")
    return records


def by_name(records: list[Record], best: Callable[[list[Any]], Any] = max) -> dict[str, Any]:
    """One value per contender over its rounds (``best`` of the successful ones; None if none
    succeeded)."""
    values: dict[str, list[Any]] = {}
    for record in records:
        values.setdefault(record.name, [])
        if record.error is None and record.value is not None:
            values[record.name].append(record.value)
    return {name: best(found) if found else None for name, found in values.items()}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    return json.dumps(value)[:120]


def _run_one(contender: Contender, round_: int, position: int, timeout: float | None) -> Record:
    job = json.dumps({"target": contender.target, "kwargs": contender.kwargs})
    env = {**os.environ, **contender.env}
    try:
        proc = subprocess.run(
            [sys.executable, str(pathlib.Path(__file__).resolve()), job],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Record(contender.name, round_, position, None, error=f"timed out after {timeout} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            payload = json.loads(line[len(MARKER) :])
            return Record(contender.name, round_, position, payload["pid"], **payload["out"])
    lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"]
    return Record(contender.name, round_, position, None, error=lines[-1][:200])


def load_target(target: str) -> Callable[..., Any]:
    """The function named by ``"module:function"`` or ``"file.py:function"``."""
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        path = pathlib.Path(where)
        spec = importlib.util.spec_from_file_location(f"_apart_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def _child(job: str) -> None:
    spec = json.loads(job)
    try:
        value = load_target(spec["target"])(**spec["kwargs"])
        out = {"value": value}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as this run's error
        out = {
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        }
    print(MARKER + json.dumps({"pid": os.getpid(), "out": out}), flush=True)


if __name__ == "__main__":
    # Run as a file (no rlwb import before the target's own): its folder is not a package root.
    here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != here]
    _child(sys.argv[1])
