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


def _fake_run(
    root: pathlib.Path, task: str, seed: int, repeat: int | None, evals: dict, **config
) -> None:
    """A run folder; ``config`` adds to its ``config.yaml`` (experiment, agent_class, ...)."""
    from torch.utils.tensorboard import SummaryWriter

    experiment = config.setdefault("experiment", "tdmpc_dmc")
    run = root / f"{experiment}-{task}-{seed}-20260101-000000"
    run.mkdir(parents=True)
    kwargs = {"action_repeat": repeat} if repeat else {}
    train = {"task": task, "seed": seed, "learning_starts": 5_000, "task_kwargs": kwargs}
    dump_yaml({**config, "train": train}, run / "config.yaml")
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
    with pytest.raises(SystemExit, match="no TD-MPC run folders"):
        (tmp_path / "empty" / "events.out.tfevents.0").parent.mkdir()
        (tmp_path / "empty" / "events.out.tfevents.0").write_bytes(b"")
        curves.main([str(tmp_path / "empty")])


def test_only_td_mpc_runs_with_their_own_action_repeat(tmp_path, capsys, monkeypatch) -> None:
    curves = _load_script(monkeypatch)
    tdmpc = {"agent_class": "rlwb.agents.tdmpc.agent:TDMPC"}
    # a run that records its axis logs env steps already: 20,000 is env step 20,000
    _fake_run(tmp_path, "cartpole-swingup", 0, 8, {20_000: 120.0}, step_scale=8, **tdmpc)
    # an older TD-MPC run on a task without action repeat: agent steps are env steps
    _fake_run(tmp_path, "Hopper-v5", 0, None, {1_000: 50.0}, experiment="tdmpc_mujoco", **tdmpc)
    others = [
        ("ddpg_mujoco", "rlwb.agents.ddpg:DDPG", "cheetah-run"),
        ("deep_ga_humanoid", "rlwb.agents.deep_ga.agent:DeepGA", "Humanoid-v5"),
        ("cem_mpc_mujoco", "rlwb.agents.cem_mpc:CEMMPC", "HalfCheetah-v5"),
        ("safe_mpc_tracking", "rlwb.agents.safe_cem_mpc:SafeCEMMPC", "Quadrotor-v0"),
    ]
    for experiment, agent, task in others:
        _fake_run(tmp_path, task, 0, None, {1_000: 1.0}, experiment=experiment, agent_class=agent)
    curves.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "### cartpole-swingup (env steps = agent steps x 8)" in out
    assert "| 20,000 | 120 | 120 | 114, 84, 78, 99, 116 | 98 |" in out
    assert "### Hopper-v5 (env steps = agent steps x 1)" in out and "| 1,000 | 50 |" in out
    assert "no published TD-MPC result for this task" in out
    assert out.count("### ") == 3  # two tasks and the speed table
    assert "skipped runs of other agents: cem_mpc_mujoco x1, ddpg_mujoco x1, " in out
    assert "### cheetah-run" not in out and "### Humanoid" not in out


def test_published_results_cover_the_authors_tasks(monkeypatch) -> None:
    table = _load_script(monkeypatch).published()
    assert len(table) == 21 and {"cup-catch", "finger-turn_hard", "dog-run"} <= set(table)
    assert max(table["humanoid-walk"]) == 3_000_000 and max(table["dog-run"]) == 5_000_000
    assert table["humanoid-walk"][500_000] == (517, 427, 382, 480, 433)
    assert all(len(t) == 26 for task, t in table.items() if task.split("-")[0] not in
               ("humanoid", "dog"))  # fmt: skip
