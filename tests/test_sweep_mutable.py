"""Resuming with the agent fields its config declares ``mutable_on_resume`` (what PBT
changes between trials) continues the run with them, optimizers included; any other agent
field is still refused."""

from __future__ import annotations

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb.errors import ConfigError
from rlwb.experiments import ddpg_pendulum

TINY = ["--train.total-steps", "200", "--train.learning-starts", "100", "--train.eval-every",
        "0", "--train.eval-episodes", "1", "--train.eval-horizon", "20",
        "--train.checkpoint-every", "100", "--train.progress-every", "0"]  # fmt: skip


def test_mutable_fields_change_on_resume_and_reach_the_optimizer(tmp_path) -> None:
    first = ddpg_pendulum.main([*TINY, "--train.run-dir", str(tmp_path)])
    more = ["--train.total-steps", "300", "--resume", str(first.run_dir)]
    with pytest.raises(ConfigError, match="cannot change agent.gamma"):
        ddpg_pendulum.main([*more, "--agent.gamma", "0.5"])
    resumed = ddpg_pendulum.main([*more, "--agent.actor-lr", "0.02", "--agent.noise-sigma", "0.3"])
    payload = ckpt.load(ckpt.resolve(resumed.run_dir))
    assert payload["agent_config"]["actor_lr"] == 0.02
    assert payload["agent_config"]["noise_sigma"] == 0.3
    assert payload["agent_config"]["critic_lr"] == 1e-3  # unchanged
    lrs = [g["lr"] for g in payload["agent"]["actor_opt"]["param_groups"]]
    assert lrs and all(lr == 0.02 for lr in lrs)
    changed = payload["resumes"][-1]["changed"]
    assert changed["agent.actor_lr"][1] == 0.02 and "agent.noise_sigma" in changed
    # the new rate is the one the updates used: the same resume at the old rate differs
    at_200 = first.run_dir / "checkpoints" / ckpt.checkpoint_name(200)
    assert ckpt.step_of(at_200) == 200
    same = ddpg_pendulum.main(["--train.total-steps", "300", "--resume", str(at_200),
                               "--agent.noise-sigma", "0.3"])  # fmt: skip
    assert same.run_dir != resumed.run_dir  # a branch beside the mutated continuation
    actor = payload["agent"]["actor"]
    other = ckpt.load(ckpt.resolve(same.run_dir))["agent"]["actor"]
    assert any(not torch.equal(actor[k], other[k]) for k in actor)
