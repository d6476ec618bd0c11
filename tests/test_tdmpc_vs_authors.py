"""benchmarks/tdmpc_vs_authors.py: skips cleanly without the authors' code, and its rlwb
worker times a plan and an update (the authors' side runs when RLWB_TDMPC_AUTHORS names a
copy of their repository)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "tdmpc_vs_authors.py"


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("tdmpc_vs_authors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_skips_without_the_authors_code(bench, tmp_path, capsys) -> None:
    assert bench.main([]) == 0
    assert bench.main(["--authors", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("skipped: no --authors PATH")
    assert out[1].startswith(f"skipped: no {tmp_path}")


def test_rlwb_worker_times_plan_and_update(bench) -> None:
    timings = bench.rlwb_worker(bench.SETTINGS["smoke"], repeats=1, threads=1)
    assert set(timings) == {"plan", "plan_cpu", "update", "update_cpu"}
    assert all(0 < t < 5 for t in timings.values())


@pytest.mark.skipif(not os.environ.get("RLWB_TDMPC_AUTHORS"), reason="no copy of their code")
def test_smoke_against_the_authors(bench, capsys) -> None:
    assert bench.main(["--authors", os.environ["RLWB_TDMPC_AUTHORS"], "--smoke"]) == 0
    assert "| update | " in capsys.readouterr().out
