"""The runner's seams: the metrics and end-of-run hooks, its public step function, and the
runner modules' independence from the command-line front end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb import make_engine
from rlwb.stepping import training_steps
from rlwb.train import TrainConfig, train
from tests.helpers import ROOT, subprocess_env
from tests.test_runtime import assert_same
from tests.toy_agent import ToyAgent, ToyConfig


def _cfg(tmp_path, **overrides) -> TrainConfig:
    base = dict(
        task="Toy-v0", total_steps=400, learning_starts=50, eval_every=200, checkpoint_every=200,
        log_every=100, eval_episodes=4, run_dir=str(tmp_path), progress=False,
    )  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def _scalars(run_dir, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]


class MeasuringAgent(ToyAgent):
    """Counts its updates between two ``metrics()`` calls, as an agent would average a loss."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.updates_since = 0

    def update(self, num_updates: int) -> dict[str, float]:
        self.updates_since += num_updates
        return super().update(num_updates)

    def metrics(self) -> dict[str, float]:
        measured, self.updates_since = self.updates_since, 0
        return {"toy/updates_since_log": float(measured)}


def test_agent_metrics_are_drained_and_logged_under_their_tag_at_every_log_step(tmp_path):
    result = train(MeasuringAgent, ToyConfig(), _cfg(tmp_path))
    logged = _scalars(result.run_dir, "toy/updates_since_log")
    # updates from env step 50 on, one per step: 51 up to step 100, then 100 per log step
    assert logged == [(100, 51.0), (200, 100.0), (300, 100.0), (400, 100.0)]
    assert _scalars(result.run_dir, "losses/policy_loss")  # update()'s return still logged


class StopsItself(ToyAgent):
    """Sends its own process SIGINT (as Ctrl-C would) at the update that reaches env step
    ``STOP_AT``: the runner stops after that step."""

    STOP_AT = 250

    def update(self, num_updates: int) -> dict[str, float]:
        if self.size == self.STOP_AT:
            os.kill(os.getpid(), signal.SIGINT)
        return super().update(num_updates)


def test_on_end_runs_once_after_the_final_evaluation_and_not_for_an_interrupted_run(tmp_path):
    calls = []

    def on_end(agent, result, logger) -> None:  # noqa: ANN001
        calls.append((agent.size, result.interrupted, result.eval_mean))
        logger.scalar("end/eval_mean", result.eval_mean, result.env_steps)

    stopped = train(StopsItself, ToyConfig(), _cfg(tmp_path), on_end=on_end)
    assert stopped.interrupted and stopped.env_steps == StopsItself.STOP_AT and calls == []
    resumed = train(StopsItself, ToyConfig(), _cfg(tmp_path), resume=stopped.checkpoint,
                    on_end=on_end)  # fmt: skip
    assert not resumed.interrupted and resumed.env_steps == 400
    # the training agent (400 transitions observed), after the final evaluation
    assert calls == [(400, False, resumed.eval_mean)]
    assert _scalars(resumed.run_dir, "end/eval_mean") == [(400, pytest.approx(resumed.eval_mean))]


def test_training_steps_is_the_runners_loop(tmp_path):
    """Driving a StepAgent with the public step function leaves it exactly as the runner
    does (same seed, random warm-up, update ratio)."""
    steps, starts, ratio = 120, 40, 0.5
    run = train(ToyAgent, ToyConfig(), _cfg(tmp_path, num_envs=2, total_steps=steps,
                learning_starts=starts, updates_per_step=ratio, eval_every=60, seed=3))  # fmt: skip
    ckpt.seed_everything(3)
    engine = make_engine("Toy-v0", 2, seed=3)
    agent = ToyAgent(ToyConfig(), engine.spec, torch.device("cpu"))
    seen = list(training_steps(agent, engine, steps, starts, ratio, seed=3))
    assert seen == list(range(2, steps + 1, 2))
    assert_same(agent.state_dict(), ckpt.load(run.checkpoint)["agent"], "agent")


def test_runner_modules_do_not_import_the_cli():
    """The runner (and ``python -m rlwb.experiments.X``'s path through it) never loads the
    command-line front end."""
    code = textwrap.dedent(
        """
        import sys, tempfile
        import rlwb.train, rlwb.experiment, rlwb.resume, rlwb.saved_run, rlwb.stepping
        import rlwb.training_run, rlwb.evaluate
        from tests import toy_experiment
        sys.argv = ["toy", "--train.total-steps", "20", "--train.eval-every", "0",
                    "--train.run-dir", tempfile.mkdtemp()]
        toy_experiment.main()  # argv None: the command-line path
        assert "rlwb.cli" not in sys.modules, "the runner imported rlwb.cli"
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
