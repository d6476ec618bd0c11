"""experiments/tdmpc_dmc.py: the authors' per-domain settings, resolved from the task name,
an env-step budget, and command-line options that win over both."""

from __future__ import annotations

import pytest
import yaml

from rlwb.config import parse_cli
from rlwb.errors import ConfigError
from rlwb.experiments import tdmpc_dmc
from rlwb.train import budget_as_given, explicit_fields, resolve_budget


def _config(*argv: str):
    """The experiment's config for a command line, as ``rlwb train tdmpc_dmc`` builds it."""
    cls = tdmpc_dmc.config_for(tdmpc_dmc.task_in(argv))
    parsed = parse_cli(cls, list(argv))
    config = cls(train=parsed.train, agent=parsed.agent)
    train = resolve_budget(budget_as_given(config.train, explicit_fields(argv)))
    return train, config.agent


@pytest.mark.parametrize(
    ("task", "repeat", "env_steps", "eval_every"),
    [
        ("cheetah-run", 4, 500_000, 5_000),
        ("walker-walk", 2, 500_000, 10_000),
        ("finger-turn_hard", 2, 500_000, 10_000),
        ("cartpole-swingup_sparse", 8, 500_000, 2_500),
        ("humanoid-walk", 2, 3_000_000, 10_000),
        ("dog-run", 2, 5_000_000, 10_000),
    ],
)
def test_budget_per_domain_in_env_steps(task, repeat, env_steps, eval_every) -> None:
    train, _ = _config("--train.task", task)
    assert train.task == task and train.task_kwargs == {"action_repeat": repeat}
    assert train.total_env_steps == env_steps and train.total_steps == env_steps // repeat
    assert train.eval_every * repeat == 20_000  # the authors evaluate every 20k env steps
    assert train.eval_every == eval_every and train.learning_starts == 5_000


def test_per_domain_agent_settings() -> None:
    _, cheetah = _config()
    assert (cheetah.iterations, cheetah.latent_dim, cheetah.batch_size, cheetah.lr) == (
        6, 50, 512, 1e-3,
    )  # fmt: skip
    _, humanoid = _config("--train.task=humanoid-stand")
    assert (humanoid.iterations, humanoid.latent_dim, humanoid.batch_size) == (12, 100, 512)
    _, dog = _config("--train.task", "dog-trot")
    assert (dog.iterations, dog.latent_dim, dog.batch_size, dog.lr) == (8, 100, 2048, 3e-4)


def test_user_options_win_over_the_domain() -> None:
    train, agent = _config(
        "--train.task", "humanoid-walk", "--agent.iterations", "6", "--agent.lr", "1e-4",
        "--train.task-kwargs", "action_repeat", "1", "max_episode_steps", "50",
    )  # fmt: skip
    assert agent.iterations == 6 and agent.lr == 1e-4 and agent.latent_dim == 100
    assert train.task_kwargs == {"action_repeat": 1, "max_episode_steps": 50}
    assert train.total_steps == 3_000_000  # the env budget at the user's action repeat
    train, _ = _config("--train.task", "dog-run", "--train.total-env-steps", "100000")
    assert train.total_steps == 50_000
    train, _ = _config("--train.task", "walker-run", "--train.total-steps", "1234")
    assert train.total_steps == 1234 and train.total_env_steps is None
    with pytest.raises(ConfigError, match="not both"):
        _config("--train.total-steps", "10", "--train.total-env-steps", "40")


def test_a_short_run_counts_env_steps(tmp_path) -> None:
    small = ["--agent.samples", "16", "--agent.elites", "4", "--agent.iterations", "1",
             "--agent.batch-size", "4", "--agent.latent-dim", "4", "--agent.mlp-dim", "8",
             "--agent.enc-dim", "8", "--agent.buffer-size", "1000"]  # fmt: skip
    result = tdmpc_dmc.main(
        ["--train.task", "cartpole-swingup", "--train.total-env-steps", "80",
         "--train.learning-starts", "8", "--train.eval-episodes", "1", "--train.eval-horizon",
         "2", "--train.run-dir", str(tmp_path), "--train.no-progress", *small]
    )  # fmt: skip
    assert result.env_steps == 10 and result.step_scale == 8  # agent steps, 80 env steps
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["experiment"] == "tdmpc_dmc" and config["step_scale"] == 8
    assert config["train"]["task_kwargs"] == {"action_repeat": 8}
