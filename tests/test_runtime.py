"""The training runner: loop accounting, logging, exact resume after SIGKILL and Ctrl-C."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import yaml

from rlwb import checkpoint as ckpt
from rlwb import make_engine
from rlwb.config import from_dict, to_plain
from rlwb.errors import CheckpointError, ConfigError
from rlwb.train import TrainConfig, run_experiment, train
from tests.helpers import ROOT, subprocess_env
from tests.toy_agent import ToyAgent, ToyConfig, ToySearch, ToySearchConfig
from tests.toy_experiment import Config as ToyExperimentConfig


def _cfg(tmp_path, **overrides) -> TrainConfig:
    base = dict(
        task="Toy-v0", total_steps=1200, learning_starts=100, eval_every=400, checkpoint_every=400,
        log_every=200, eval_episodes=8, keep_checkpoints=2, run_dir=str(tmp_path), progress=False,
    )  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def assert_same(a, b, where="state"):
    """Exact equality of nested checkpoint contents (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and np.array_equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _zero_policy_return(seed: int, episodes: int) -> float:
    engine = make_engine("Toy-v0", episodes, seed=seed)
    engine.reset(seed=seed)
    return float(engine.rollout(lambda obs: torch.zeros(obs.shape[0], 1)).returns.mean())


def _final_states_equal(path_a, path_b) -> None:
    a, b = ckpt.load(path_a), ckpt.load(path_b)
    for key in ("agent", "engine", "obs", "rng", "eval"):
        assert_same(a[key], b[key], key)
    counters_a, counters_b = dict(a["counters"]), dict(b["counters"])
    for counters in (counters_a, counters_b):
        counters.pop("wall_time")
    assert counters_a == counters_b


def test_step_agent_learns_logs_and_keeps_checkpoints(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(ToyAgent, ToyConfig(), _cfg(tmp_path, total_steps=800, checkpoint_every=200))
    assert result.env_steps == 800 and not result.interrupted
    assert result.updates == 701  # one per step from env step 100 on
    eval_seed = 10_000
    assert result.eval_mean > -1.0 > -3.0 > _zero_policy_return(eval_seed, 8)
    assert len(result.eval_returns) == 8
    names = [p.name for p in ckpt.CheckpointManager(result.run_dir / "checkpoints").existing()]
    assert names == [ckpt.checkpoint_name(600), ckpt.checkpoint_name(800)]  # keep 2
    saved = ckpt.load(result.checkpoint)
    assert saved["agent"]["act_calls"] == 700  # uniform random actions for the first 100
    assert saved["counters"]["env_steps"] == 800 and saved["backend"] == "toy"
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["train"]["task"] == "Toy-v0" and config["train"]["eval_seed"] == eval_seed
    assert config["agent"]["hidden"] == [8] and config["agent_class"] == "tests.toy_agent:ToyAgent"

    acc = EventAccumulator(str(result.run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {
        "charts/episodic_return", "charts/episodic_length", "eval/return_mean", "eval/return_std",
        "losses/policy_loss", "perf/steps_per_second",
    }  # fmt: skip
    assert expected <= tags
    assert len(acc.Scalars("charts/episodic_return")) == 800 // 20
    assert {e.step for e in acc.Scalars("eval/return_mean")} == {400, 800}
    assert acc.Scalars("eval/return_mean")[-1].value == pytest.approx(result.eval_mean, rel=1e-6)
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")


def test_fractional_update_ratio_and_many_members(tmp_path):
    cfg = _cfg(tmp_path, num_envs=4, updates_per_step=0.3, learning_starts=40, total_steps=200)
    result = train(ToyAgent, ToyConfig(), dataclasses.replace(cfg, eval_every=0))
    assert result.env_steps == 200
    assert result.updates == int(41 * 4 * 0.3)  # 41 engine steps from env step 40 on, 1.2 each
    agent_state = ckpt.load(result.checkpoint)["agent"]
    assert agent_state["episode_starts"] == 4 + 4 * 2  # initial reset + two episodes each
    assert agent_state["size"] == 200


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    """Kill a run between checkpoints; resuming from its last one ends in the same state."""
    cfg = _cfg(
        tmp_path / "killed",
        total_steps=900,
        checkpoint_every=300,
        keep_checkpoints=10,
        run_name="r",
    )
    script = textwrap.dedent(
        f"""
        from rlwb.train import TrainConfig, train
        from tests.toy_agent import ToyAgent, ToyConfig
        train(ToyAgent, ToyConfig(), TrainConfig(**{dataclasses.asdict(cfg)!r}))
        """
    )
    env = {**subprocess_env(), "TOY_SLEEP": "0.004"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    manager = ckpt.CheckpointManager(tmp_path / "killed" / "r" / "checkpoints")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            latest = manager.latest()
            if latest is not None:
                time.sleep(0.3)  # some steps past the checkpoint, lost by the kill
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert manager.latest() is not None, "the training process wrote no checkpoint"
    killed_at = ckpt.load(manager.latest())["counters"]["env_steps"]
    assert 300 <= killed_at < 900, "the run must die between checkpoints, before the end"

    resumed = train(ToyAgent, ToyConfig(), cfg, resume=str(tmp_path / "killed" / "r"))
    assert resumed.env_steps == 900 and resumed.run_dir == tmp_path / "killed" / "r"
    full = train(ToyAgent, ToyConfig(), dataclasses.replace(cfg, run_dir=str(tmp_path / "full")))
    _final_states_equal(resumed.checkpoint, full.checkpoint)
    assert resumed.eval_returns == full.eval_returns
    assert resumed.updates == full.updates


@pytest.mark.parametrize(
    "task,backend", [("Pendulum-v1", "torch"), ("InvertedPendulum-v5", "mujoco")]
)
def test_resume_on_a_real_engine_equals_uninterrupted_run(tmp_path, task, backend):
    """Real backends: resume from a mid-run checkpoint copied elsewhere."""
    cfg = _cfg(
        tmp_path / "a", task=task, backend=backend, num_envs=2, total_steps=800,
        learning_starts=100, checkpoint_every=400, eval_every=400, eval_episodes=2, run_name="a",
    )  # fmt: skip
    full = train(ToyAgent, ToyConfig(), cfg)
    middle = ckpt.CheckpointManager(full.run_dir / "checkpoints").existing()[0]
    assert ckpt.load(middle)["counters"]["env_steps"] == 400
    copy = tmp_path / "b" / "checkpoints" / middle.name
    copy.parent.mkdir(parents=True)
    shutil.copy(middle, copy)
    resumed = train(ToyAgent, ToyConfig(), cfg, resume=str(copy))
    _final_states_equal(resumed.checkpoint, full.checkpoint)
    assert resumed.eval_mean == full.eval_mean and resumed.eval_returns == full.eval_returns


def test_iteration_agent_runs_and_resumes_exactly(tmp_path):
    cfg = _cfg(tmp_path / "full", num_envs=8, total_steps=800, eval_every=0, checkpoint_every=0)
    full = train(ToySearch, ToySearchConfig(), cfg)
    assert full.env_steps >= 800
    assert full.eval_mean > _zero_policy_return(10_000, 8) + 1.0  # the search found a gain
    half = train(
        ToySearch,
        ToySearchConfig(),
        dataclasses.replace(cfg, total_steps=400, run_dir=str(tmp_path / "half")),
    )
    resumed = train(ToySearch, ToySearchConfig(), cfg, resume=str(half.checkpoint))
    assert resumed.env_steps == full.env_steps
    assert_same(ckpt.load(resumed.checkpoint)["agent"], ckpt.load(full.checkpoint)["agent"])


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_checkpoint_and_exit_cleanly(tmp_path, sig, code):
    cmd = [
        sys.executable, "-m", "rlwb.cli", "train", "tests.toy_experiment",
        "--train.total-steps", "1000000", "--train.run-dir", str(tmp_path), "--train.run-name", "r",
    ]  # fmt: skip
    env = {**subprocess_env(), "TOY_SLEEP": "0.002"}
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    manager = ckpt.CheckpointManager(tmp_path / "r" / "checkpoints")
    deadline = time.monotonic() + 60
    while manager.latest() is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted at step" in out
    saved = ckpt.load(manager.latest())
    stopped_at = saved["counters"]["env_steps"]
    assert f"interrupted at step {stopped_at:,} ({sig.name})" in out
    hint = f"resume with: rlwb train tests.toy_experiment --resume {manager.latest()}"
    assert hint in out
    result = run_experiment(
        ToyAgent,
        ToyExperimentConfig,
        ["--resume", str(tmp_path / "r"), "--train.total-steps", str(stopped_at + 60)],
    )
    assert result.env_steps == stopped_at + 60 and result.run_dir == tmp_path / "r"


def test_run_experiment_applies_overrides_and_rejects_bad_ones(tmp_path):
    argv = ["--train.total-steps", "60", "--train.learning-starts", "20", "--agent.lr", "0.1"]
    result = run_experiment(
        ToyAgent, ToyExperimentConfig, [*argv, "--train.run-dir", str(tmp_path)]
    )
    assert result.env_steps == 60 and result.updates == 41
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["agent"]["lr"] == 0.1 and config["experiment"] == "toy_experiment"
    assert result.run_dir.name.startswith("toy_experiment-Toy-v0-0-")
    with pytest.raises(ConfigError, match=r"Unrecognized options: --train.bogus"):
        run_experiment(ToyAgent, ToyExperimentConfig, ["--train.bogus", "1"])
    with pytest.raises(ConfigError, match=r"--train.total-steps.*'abc'"):
        run_experiment(ToyAgent, ToyExperimentConfig, ["--train.total-steps", "abc"])
    with pytest.raises(ConfigError, match="train.num_envs must be >= 1"):
        run_experiment(ToyAgent, ToyExperimentConfig, ["--train.num-envs", "0"])
    with pytest.raises(CheckpointError, match="holds a tests.toy_agent:ToyAgent agent"):
        train(ToySearch, ToySearchConfig(), _cfg(tmp_path), resume=str(result.checkpoint))


def test_configs_survive_plain_data_roundtrip():
    agent = ToyConfig(lr=0.2, hidden=(4, 5))
    assert from_dict(ToyConfig, yaml.safe_load(yaml.safe_dump(to_plain(agent)))) == agent
    cfg = TrainConfig(task="Hopper-v5", task_kwargs={"frame_skip": 2}, eval_seed=3)
    assert from_dict(TrainConfig, yaml.safe_load(yaml.safe_dump(to_plain(cfg)))) == cfg
    with pytest.raises(ConfigError, match="no field"):
        from_dict(ToyConfig, {"learning_rate": 1.0})


# ---------------------------------------------------------------------- long phases
TINY_TDMPC = dict(
    iterations=2, samples=32, elites=4, batch_size=16, buffer_size=2_000,
    latent_dim=8, mlp_dim=32, enc_dim=16, horizon=3, schedule_steps=100, seed=0,
)  # fmt: skip


class _Child:
    """A child process whose stdout lines are collected as they come (for signal tests)."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        import threading

        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """The first stdout line matching ``pattern`` (fails if the child ends first)."""
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError(f"no line matching {pattern!r}: {''.join(self.lines)}")

    def interrupt(self, sig: int = signal.SIGINT, within: float = 10) -> tuple[int, str, float]:
        """Send ``sig``; (exit code, stdout, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            err = self.proc.stderr.read()
            self.proc.wait(timeout=within)
        finally:
            self.proc.kill()
        self._reader.join(timeout=5)
        return self.proc.returncode, "".join(self.lines) + err, time.monotonic() - start


def _tdmpc_cfg(run_dir, **overrides) -> TrainConfig:
    base = dict(
        task="Pendulum-v1", backend="torch", total_steps=206, learning_starts=200,
        eval_every=100, eval_episodes=1, eval_horizon=5, checkpoint_every=0, log_every=100,
        run_dir=str(run_dir), run_name="r", progress=True, progress_every=0.2,
    )  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def test_tdmpc_catch_up_shows_progress_stops_on_sigint_and_resumes_exactly(tmp_path):
    """The seed steps' catch-up (one update per stored transition, in one update call)
    prints progress lines, stops within seconds on Ctrl-C with a checkpoint that remembers
    the updates still owed, and the resumed run ends bit for bit as the uninterrupted one."""
    from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig

    cfg = _tdmpc_cfg(tmp_path / "stopped")
    script = textwrap.dedent(
        f"""
        import rlwb.logger
        from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
        from rlwb.cli import run_as_command
        from rlwb.train import TrainConfig, train
        rlwb.logger.PHASE_SHOW_S = 0.0  # show the catch-up at once, however fast it runs
        run_as_command(lambda: train(
            TDMPC, TDMPCConfig(**{TINY_TDMPC!r}), TrainConfig(**{dataclasses.asdict(cfg)!r})
        ))
        """
    )
    child = _Child([sys.executable, "-c", script], {**subprocess_env(), "OMP_NUM_THREADS": "1"})
    line = child.wait_for(r"updates [1-9][\d,]*/201\b")
    assert line.startswith("step 200/206"), line
    code, out, took = child.interrupt(signal.SIGINT)
    assert code == 130 and took < 10, out
    assert "Traceback" not in out and "interrupted at step 200 (SIGINT)" in out, out
    run_dir = tmp_path / "stopped" / "r"
    saved = ckpt.load(ckpt.CheckpointManager(run_dir / "checkpoints").latest())
    assert saved["counters"]["env_steps"] == 200
    owed = saved["agent"]["owed"]
    assert owed["ran"] == saved["agent"]["updates"] and owed["ran"] + owed["left"] == 201, owed
    assert 0 < owed["ran"] < 201, "stopped inside the catch-up"

    resumed = train(TDMPC, TDMPCConfig(**TINY_TDMPC), cfg, resume=str(run_dir))
    full_cfg = dataclasses.replace(cfg, run_dir=str(tmp_path / "full"), progress=False)
    full = train(TDMPC, TDMPCConfig(**TINY_TDMPC), full_cfg)
    assert resumed.updates == full.updates == 201 + 6
    _final_states_equal(resumed.checkpoint, full.checkpoint)
    assert resumed.eval_returns == full.eval_returns


def test_an_interrupted_evaluation_checkpoints_and_the_resume_evaluates_first(tmp_path):
    """Ctrl-C during a slow mid-run evaluation: progress lines, exit 130 within seconds, a
    checkpoint at that step; the resume runs that evaluation, then ends as a run never
    stopped."""
    cmd = [
        sys.executable, "-m", "rlwb.cli", "train", "tests.toy_experiment", "--train.progress",
        "--train.progress-every", "0.2", "--train.run-dir", str(tmp_path), "--train.run-name", "r",
    ]  # fmt: skip
    child = _Child(cmd, {**subprocess_env(), "TOY_EVAL_SLEEP": "0.2"})
    line = child.wait_for(r"eval steps [\d,]+/20\b")
    assert line.startswith("step 200/400"), line
    code, out, took = child.interrupt(signal.SIGINT)
    assert code == 130 and took < 10, out
    assert "interrupted at step 200 (SIGINT)" in out and "eval return" not in out, out
    assert ckpt.load(tmp_path / "r" / "checkpoints" / ckpt.checkpoint_name(200))

    resumed = run_experiment(ToyAgent, ToyExperimentConfig, ["--resume", str(tmp_path / "r")])
    full = run_experiment(ToyAgent, ToyExperimentConfig, ["--train.run-dir", str(tmp_path / "f")])
    _final_states_equal(resumed.checkpoint, full.checkpoint)
    assert resumed.eval_returns == full.eval_returns
    from tests.test_resume_and_policy import _eval_steps

    assert _eval_steps(resumed.run_dir) == _eval_steps(full.run_dir) == [200, 400]


def test_eta_after_the_random_phase_uses_the_rate_of_the_slow_steps(tmp_path, capsys, monkeypatch):
    """Random-action steps are fast, learning steps slow: the rate (and so the ETA) shown
    after the random phase counts the slow steps only."""
    monkeypatch.setenv("TOY_SLEEP", "0.01")  # per update: at most 100 learning steps/s
    cfg = _cfg(
        tmp_path, total_steps=320, learning_starts=200, eval_every=0, checkpoint_every=0,
        eval_episodes=1, progress=True, progress_every=0.3,
    )  # fmt: skip
    train(ToyAgent, ToyConfig(), cfg)
    lines = re.findall(r"^step ([\d,]+)/320 .*  ([\d,]+) steps/s .* ETA (\d+):(\d\d):(\d\d)$",
                       capsys.readouterr().out, re.M)  # fmt: skip
    late = [(int(s.replace(",", "")), int(r.replace(",", ""))) for s, r, *_ in lines]
    late = [(step, rate) for step, rate in late if 200 < step < 320]
    assert late, lines
    for step, rate in late:
        assert rate <= 100, (step, rate)


def test_rlwb_eval_shows_progress_and_stops_on_sigint_with_one_line(tmp_path):
    done = run_experiment(ToyAgent, ToyExperimentConfig, ["--train.run-dir", str(tmp_path)])
    main = "import sys, tests.toy_agent, rlwb.cli; sys.exit(rlwb.cli.main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", main, "eval", str(done.checkpoint), "--progress-every", "0.2"]
    child = _Child(cmd, {**subprocess_env(), "TOY_EVAL_SLEEP": "0.2"})
    assert re.match(r"eval steps [\d,]+/20 ", child.wait_for(r"eval steps"))
    code, out, took = child.interrupt(signal.SIGINT)
    assert code == 130 and took < 10, out
    assert out.rstrip().endswith("rlwb: interrupted") and "Traceback" not in out, out


class _SearchStoppedInAGeneration(ToySearch):
    """ToySearch that is sent SIGINT at the start of its third generation and reports the
    generation as a phase (as the Deep GA does): the stop must come out of ``iterate``."""

    signal_at = 3

    def iterate(self, engine):  # noqa: ANN001, ANN201
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.signal_at:
            os.kill(os.getpid(), signal.SIGINT)
        self.phase("generation", 0, 1)
        return super().iterate(engine)


def test_a_stop_inside_an_iteration_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path / "a", num_envs=8, total_steps=800, eval_every=0, checkpoint_every=0)
    stopped = train(_SearchStoppedInAGeneration, ToySearchConfig(), cfg)
    assert stopped.interrupted and stopped.stop_signal == signal.SIGINT
    assert ckpt.load(stopped.checkpoint)["counters"]["iterations"] == 2
    monkeypatch.setattr(_SearchStoppedInAGeneration, "signal_at", 0)
    resumed = train(_SearchStoppedInAGeneration, ToySearchConfig(), cfg, resume=stopped.run_dir)
    full = train(ToySearch, ToySearchConfig(), dataclasses.replace(cfg, run_dir=str(tmp_path)))
    assert resumed.env_steps == full.env_steps
    assert_same(ckpt.load(resumed.checkpoint)["agent"], ckpt.load(full.checkpoint)["agent"])
