"""The runner's env-step budget and axis: ``total_env_steps`` = agent steps x action repeat,
and TensorBoard, progress lines and the summary count env steps."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from rlwb import checkpoint as ckpt
from rlwb.errors import ConfigError
from rlwb.train import TrainConfig, budget_as_given, run_experiment, train
from tests.toy_agent import ToyAgent, ToyConfig
from tests.toy_experiment import Config as ToyExperimentConfig


def _cfg(tmp_path, **overrides) -> TrainConfig:
    # Toy-v0 episodes: 20 task steps, 10 agent steps at action repeat 2
    base = dict(
        task="Toy-v0", total_steps=999, total_env_steps=400, learning_starts=20, eval_every=100,
        checkpoint_every=100, log_every=50, eval_episodes=2, run_dir=str(tmp_path),
        progress=False, task_kwargs={"action_repeat": 2},
    )  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def _steps(run_dir, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_env_step_budget_sets_agent_steps_and_the_logged_axis(tmp_path, capsys) -> None:
    cfg = _cfg(tmp_path, progress=True, progress_every=1e-9)  # a progress line every step
    result = train(ToyAgent, ToyConfig(), cfg)
    assert result.env_steps == 200 and result.step_scale == 2  # 400 env steps at repeat 2
    assert _steps(result.run_dir, "eval/return_mean") == [200, 400]  # agent steps 100, 200
    episodes = _steps(result.run_dir, "charts/episodic_return")
    assert episodes == list(range(20, 401, 20))  # an episode every 10 agent steps
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["step_scale"] == 2 and config["train"]["total_steps"] == 200
    assert config["train"]["total_env_steps"] == 400
    out = capsys.readouterr().out
    assert "step 400/400 (100%)" in out and "step 200: eval return" in out


def test_resume_keeps_the_axis_it_started_with(tmp_path) -> None:
    first = train(ToyAgent, ToyConfig(), _cfg(tmp_path, total_env_steps=200))
    assert ckpt.load(first.checkpoint)["step_scale"] == 2
    more = _cfg(tmp_path, total_env_steps=400)
    second = train(ToyAgent, ToyConfig(), more, resume=first.checkpoint,
                   explicit={"train.total_env_steps"})  # fmt: skip
    assert second.env_steps == 200 and second.run_dir == first.run_dir
    assert _steps(second.run_dir, "eval/return_mean") == [200, 400]
    # a checkpoint written before runs recorded their axis counts agent steps: so it goes on
    legacy = ckpt.load(first.checkpoint)
    del legacy["step_scale"]
    old = tmp_path / "old" / "checkpoints" / ckpt.checkpoint_name(100)
    ckpt.save(old, legacy)
    third = train(ToyAgent, ToyConfig(), more, resume=old, explicit={"train.total_env_steps"})
    assert third.step_scale == 1 and _steps(third.run_dir, "eval/return_mean") == [200]


def test_explicit_agent_steps_win_and_both_budgets_conflict(tmp_path) -> None:
    cfg = _cfg(tmp_path)
    explicit = {"train.total_steps"}
    given = budget_as_given(cfg, explicit)
    assert given.total_env_steps is None and given.total_steps == 999
    assert "train.total_env_steps" in explicit  # a resume drops the saved env budget as well
    assert budget_as_given(cfg, {"train.seed"}) is cfg
    argv = ["--train.total-steps", "40", "--train.total-env-steps", "80",
            "--train.run-dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(ConfigError, match="total_steps .* or train.total_env_steps"):
        run_experiment(ToyAgent, ToyExperimentConfig, argv)
    with pytest.raises(ConfigError, match="total_env_steps must be >= 1"):
        train(ToyAgent, ToyConfig(), dataclasses.replace(cfg, total_env_steps=0))
