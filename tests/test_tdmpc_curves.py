"""benchmarks/tdmpc_dmc_curves.py: agent steps become env steps (x action repeat) and sit
beside the authors' per-seed returns at the same env step."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest

from rlwb.config import dump_yaml

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "tdmpc_dmc_curves.py"


def _load_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("tdmpc_dmc_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _fake_run(root: pathlib.Path, task: str, seed: int, repeat: int, evals: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    run = root / f"tdmpc_dmc-{task}-{seed}-20260101-000000"
    run.mkdir(parents=True)
    train = {"task": task, "seed": seed, "learning_starts": 5_000,
             "task_kwargs": {"action_repeat": repeat}}  # fmt: skip
    dump_yaml({"experiment": "tdmpc_dmc", "train": train}, run / "config.yaml")
    writer = SummaryWriter(str(run))
    for step, value in evals.items():
        writer.add_scalar("eval/return_mean", value, step, walltime=1000.0 + step)
    writer.close()
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "step_000000012500.pt").write_bytes(b"")
    os.utime(run / "checkpoints" / "step_000000012500.pt", (1000.0 + 12_500,) * 2)


def test_curves_convert_steps_and_sit_beside_the_authors(tmp_path, capsys, monkeypatch) -> None:
    curves = _load_script(monkeypatch)
    _fake_run(tmp_path, "walker-walk", 0, 2, {5_000: 300.0, 10_000: 900.0})
    _fake_run(tmp_path, "walker-walk", 1, 2, {5_000: 500.0, 10_000: 950.0})
    curves.main([str(tmp_path)])
    out = capsys.readouterr().out
    # agent step 10,000 at action repeat 2 is env step 20,000: the authors' 546 ... 291
    assert "| 20,000 | 900 | 950 | 925 | 546, 535, 734, 129, 291 | 447 |" in out
    assert "| 10,000 | 300 | 500 | 400 | - | - |" in out
    # the newest checkpoint (12,500 agent steps) is the progress; 1 agent step per second
    assert "| 12,500 | 25,000 | " in out and "| 2.00 | 2.00 |" in out
    with pytest.raises(SystemExit, match="no run folders"):
        (tmp_path / "empty" / "events.out.tfevents.0").parent.mkdir()
        (tmp_path / "empty" / "events.out.tfevents.0").write_bytes(b"")
        curves.main([str(tmp_path / "empty")])
