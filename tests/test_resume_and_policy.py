"""Resume keeps the checkpoint's settings and branches apart; checkpoints load no code and
stay small; evaluation leaves training alone; policy.pt; progress lines; python -m errors."""

from __future__ import annotations

import io
import pathlib
import re
import subprocess
import sys

import pytest
import torch
import yaml

from rlwb import checkpoint as ckpt
from rlwb import cli
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.errors import CheckpointError, ConfigError
from rlwb.evaluate import evaluate, run_evaluation
from rlwb.replay import ReplayBuffer
from rlwb.train import TrainConfig, explicit_fields, run_experiment, train
from tests.helpers import ROOT, subprocess_env
from tests.test_runtime import _final_states_equal, assert_same
from tests.toy_agent import ToyAgent, ToyConfig
from tests.toy_experiment import Config as ToyExperimentConfig


def _eval_steps(run_dir: pathlib.Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return sorted(e.step for e in acc.Scalars("eval/return_mean"))


# ---------------------------------------------------------------------- resume
def test_resume_keeps_the_checkpoints_settings_and_branches_apart(tmp_path):
    base = ["--train.run-dir", str(tmp_path), "--train.run-name", "a"]
    first = run_experiment(
        ToyAgent, ToyExperimentConfig, [*base, "--train.total-steps", "600", "--train.eval-every",
                                        "300", "--train.checkpoint-every", "300"],
    )  # fmt: skip
    folder = first.run_dir / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    older = folder / ckpt.checkpoint_name(300)

    # Only --resume, from an older checkpoint: the run's own budget (600, not the
    # experiment's default 400), in a new folder; the abandoned branch is left untouched.
    branch = run_experiment(ToyAgent, ToyExperimentConfig, ["--resume", str(older)])
    assert branch.env_steps == 600
    assert branch.run_dir == tmp_path / "a-from-300"
    assert sorted(p.name for p in folder.iterdir()) == names
    assert ckpt.resolve(first.run_dir) == first.checkpoint
    _final_states_equal(branch.checkpoint, first.checkpoint)  # resumed == uninterrupted
    history = yaml.safe_load((branch.run_dir / "config.yaml").read_text())["resumes"]
    assert history[0]["at_step"] == 300 and history[0]["branch"] and history[0]["changed"] == {}
    assert _eval_steps(branch.run_dir) == [300, 600]  # the original's first half carried over

    # Explicit options change the settings, recorded in config.yaml; the checkpoint resumed
    # from survives rotation; the evaluation at the resume step stays in TensorBoard.
    more = run_experiment(
        ToyAgent,
        ToyExperimentConfig,
        ["--resume", str(first.run_dir), "--train.total-steps", "800",
         "--train.keep-checkpoints", "1"],
    )  # fmt: skip
    assert more.env_steps == 800 and more.run_dir == first.run_dir
    assert sorted(p.name for p in folder.glob("step_*")) == [
        ckpt.checkpoint_name(600),
        ckpt.checkpoint_name(800),
    ]
    config = yaml.safe_load((first.run_dir / "config.yaml").read_text())
    assert config["train"]["total_steps"] == 800
    (entry,) = config["resumes"]
    assert entry["at_step"] == 600 and not entry["branch"] and entry["time"]
    assert entry["changed"] == {"train.total_steps": [600, 800], "train.keep_checkpoints": [3, 1]}
    assert _eval_steps(first.run_dir) == [300, 600, 800]  # 600: the first run's final one

    for args, what in (
        (["--train.task", "Pendulum-v1"], "train.task"),
        (["--train.seed", "3"], "train.seed"),
        (["--agent.lr", "0.5"], "agent.lr"),
    ):
        with pytest.raises(ConfigError, match=f"cannot change {re.escape(what)} when resuming"):
            run_experiment(ToyAgent, ToyExperimentConfig, ["--resume", str(more.run_dir), *args])


def test_resume_refuses_a_total_below_the_step_reached(tmp_path):
    base = ["--train.run-dir", str(tmp_path), "--train.run-name", "a"]
    run_experiment(ToyAgent, ToyExperimentConfig, base)
    with pytest.raises(ConfigError, match=r"train.total_steps 300 is below step 400"):
        run_experiment(
            ToyAgent, ToyExperimentConfig,
            ["--resume", str(tmp_path / "a"), "--train.total-steps", "300"],
        )  # fmt: skip


def test_config_yaml_keeps_every_resume(tmp_path):
    """A resume that writes no checkpoint (a finished run evaluated again) stays listed
    after the next resume."""
    run = tmp_path / "a"
    run_experiment(ToyAgent, ToyExperimentConfig, ["--train.run-dir", str(tmp_path),
                                                   "--train.run-name", "a"])  # fmt: skip
    for change in (["--train.eval-episodes", "2"], ["--train.total-steps", "500"]):
        run_experiment(ToyAgent, ToyExperimentConfig, ["--resume", str(run), *change])
    resumes = yaml.safe_load((run / "config.yaml").read_text())["resumes"]
    assert [r["changed"] for r in resumes] == [
        {"train.eval_episodes": [4, 2]},
        {"train.total_steps": [400, 500]},
    ]


def test_explicit_fields_of_a_command_line():
    argv = ["--train.total-steps", "5", "--agent.lr=0.1", "--train.no-video", "--resume", "x"]
    names = explicit_fields(argv)
    assert {"train.total_steps", "agent.lr", "train.video"} <= names
    assert not any(n.startswith("resume") for n in names)


# ---------------------------------------------------------------------- checkpoint files
class _Exploit:
    def __reduce__(self):  # noqa: ANN204 - what a hostile file would hold
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, capsys):
    exploit = _Exploit()
    exploit.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION, "agent": exploit}, path)
    torch.load(path, weights_only=False)  # a plain torch.load runs the pickled code
    assert (tmp_path / "pwned").exists()
    (tmp_path / "pwned").unlink()
    with pytest.raises(CheckpointError, match="refusing to load it") as info:
        ckpt.load(path)
    assert "\n" not in str(info.value) and not (tmp_path / "pwned").exists()
    assert cli.main(["eval", str(path)]) == cli.EXIT_ERROR
    assert not (tmp_path / "pwned").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to load it" in err[0]


def test_checkpoint_size_scales_with_the_filled_rows():
    fields = {"obs": ((17,), torch.float32), "reward": ((), torch.float32)}
    buffer = ReplayBuffer(200_000, fields)  # 14 MB preallocated

    def saved_bytes() -> int:
        handle = io.BytesIO()
        torch.save(buffer.state_dict(), handle)
        return len(handle.getvalue())

    buffer.add(obs=torch.ones(100, 17), reward=torch.ones(100))
    small = saved_bytes()
    buffer.add(obs=torch.ones(900, 17), reward=torch.ones(900))
    large = saved_bytes()
    assert small < 20_000 and 60_000 < large < 100_000  # 72 bytes a row, plus a header


# ---------------------------------------------------------------------- evaluation
def test_eval_every_does_not_change_training(tmp_path):
    """The agent draws random numbers even when acting deterministically (as a sampling
    planner does): runs that differ only in how often they evaluate still end identical."""
    agent = ToyConfig(eval_noise=0.3)
    common = dict(
        task="Toy-v0", total_steps=400, learning_starts=50, checkpoint_every=0, log_every=100,
        eval_episodes=4, run_dir=str(tmp_path), progress=False,
    )  # fmt: skip
    often = train(ToyAgent, agent, TrainConfig(eval_every=50, run_name="often", **common))
    never = train(ToyAgent, agent, TrainConfig(eval_every=0, run_name="never", **common))
    a, b = ckpt.load(often.checkpoint), ckpt.load(never.checkpoint)
    for saved in (a, b):
        saved["counters"].pop("wall_time")
    for key in ("agent", "engine", "obs", "rng", "counters"):
        assert_same(a[key], b[key], key)
    assert often.eval_returns == never.eval_returns  # evaluations are reproducible too
    assert evaluate(often.run_dir / ckpt.POLICY_FILE, episodes=None)[2] == often.eval_returns


def test_evaluation_starts_every_episode_for_the_agent():
    from rlwb import make_engine

    engine = make_engine("Toy-v0", 3, seed=0)
    agent = ToyAgent(ToyConfig(), engine.spec, torch.device("cpu"))
    run_evaluation(agent, engine, seed=1)
    assert agent.episode_starts == 3


def test_policy_file_holds_only_the_policy_and_evaluates_like_the_checkpoint(tmp_path, capsys):
    cfg = TrainConfig(
        task="Pendulum-v1", backend="torch", total_steps=300, learning_starts=100,
        eval_every=150, checkpoint_every=0, eval_episodes=2, run_dir=str(tmp_path),
        run_name="p", progress=False,
    )  # fmt: skip
    result = train(DDPG, DDPGConfig(hidden=(16, 16), batch_size=32, buffer_size=10_000), cfg)
    policy = result.run_dir / ckpt.POLICY_FILE
    saved = ckpt.load(policy, formats=(ckpt.POLICY_FORMAT,))
    assert saved["format"] == ckpt.POLICY_FORMAT and saved["env_steps"] == 300
    assert set(saved["policy"]) == {"format_version", "actor"}  # no replay, no optimizer
    assert saved["agent_class"] == "rlwb.agents.ddpg:DDPG" and saved["spec"]["action_dim"] == 1
    assert "agent" not in saved and policy.stat().st_size < result.checkpoint.stat().st_size / 4
    with pytest.raises(CheckpointError, match="not an rlwb checkpoint"):
        train(DDPG, DDPGConfig(), cfg, resume=policy)  # a policy is not a training state
    expected = (result.eval_mean, result.eval_std, result.eval_returns)
    for path in (policy, result.checkpoint, result.run_dir):
        assert evaluate(path, episodes=None) == expected
    capsys.readouterr()
    assert cli.main(["eval", str(policy)]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{result.eval_mean:.4f} ±")


# ---------------------------------------------------------------------- using it
def test_progress_lines_when_output_is_not_a_terminal(tmp_path, capsys):
    cfg = TrainConfig(
        task="Toy-v0", total_steps=300, learning_starts=50, eval_every=0, checkpoint_every=0,
        run_dir=str(tmp_path), progress=True, progress_every=1e-6,
    )  # fmt: skip
    train(ToyAgent, ToyConfig(), cfg)
    out = capsys.readouterr().out
    lines = re.findall(
        r"^step [\d,]+/300 \(\d+%\)  [\d,]+ steps/s  return \S+  eval \S+  ETA \d+:\d\d:\d\d$",
        out,
        re.M,
    )
    assert len(lines) > 10, out


def test_python_m_experiment_reports_bad_options_like_rlwb_train(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", *args, "--train.bogus", "1"],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in (["tests.toy_experiment"], ["rlwb.cli", "train", "tests.toy_experiment"])
    ]
    (direct_err, direct), (command_err, command) = [
        (p.communicate(timeout=120)[1], p.returncode) for p in procs
    ]
    assert direct == command == cli.EXIT_ERROR
    assert direct_err == command_err
    assert direct_err.startswith("rlwb: error: ") and len(direct_err.splitlines()) == 1


def test_readme_shows_the_real_quickstart_script():
    readme = (ROOT / "README.md").read_text()
    script = (ROOT / "experiments" / "ddpg_pendulum.py").read_text()
    code = script[script.index('"""', 3) + 3 :].strip()  # without the module docstring
    assert code in readme


def test_render_hint_names_an_extra_that_exists():
    from gymnasium.error import DependencyNotInstalled

    from rlwb.errors import RlwbError
    from rlwb.video import _render

    class NoPygame:
        def render(self):  # noqa: ANN202
            raise DependencyNotInstalled(
                'pygame is not installed, run `pip install "gymnasium[classic_control]"`'
            )

    with pytest.raises(RlwbError, match=re.escape('"gymnasium[classic-control]"')):
        _render(NoPygame(), "Pendulum-v1")


def test_plot_groups_by_configuration_counts_distinct_seeds_and_stays_quiet(tmp_path):
    def run(name: str, seed: int, lr: float, steps: int = 200):  # noqa: ANN202
        cfg = TrainConfig(
            task="Toy-v0", seed=seed, total_steps=steps, learning_starts=20, eval_every=50,
            checkpoint_every=100, eval_episodes=2, run_dir=str(tmp_path), run_name=name,
            experiment="toy", progress=False,
        )  # fmt: skip
        return train(ToyAgent, ToyConfig(lr=lr), cfg)

    run("a0", 0, 0.05)
    run("a0-again", 0, 0.05)  # the same seed twice: still one seed
    long = run("a1", 1, 0.05, steps=400)  # a longer budget
    run("b0", 0, 0.1)
    older = long.run_dir / "checkpoints" / ckpt.checkpoint_name(200)
    # a branch: its copied events past step 200 are purged, which TensorBoard's reader logs
    train(ToyAgent, ToyConfig(), TrainConfig(task="Toy-v0"), resume=older, explicit=())
    out = subprocess.run(
        [sys.executable, "-m", "rlwb.cli", "plot", str(tmp_path), "-o", str(tmp_path / "c.png")],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.splitlines()[:2] == [
        "toy (Toy-v0) agent.lr=0.05: 2 seeds in 4 runs, up to step 200",  # both seeds reached
        "toy (Toy-v0) agent.lr=0.1: 1 seed, up to step 200",
    ]
    assert (tmp_path / "c.png").stat().st_size > 10_000
