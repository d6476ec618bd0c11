"""Helpers for runtime tests that start child processes."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: repository root importable, no colour, wide lines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_cli(*args: str, cwd: pathlib.Path | None = None, timeout: float = 120):
    """``rlwb ARGS`` in a fresh interpreter (``python -m rlwb.cli``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "rlwb.cli", *args],
        cwd=cwd or ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def toy_spec(
    obs_dim: int = 3,
    act_dim: int = 2,
    num_envs: int = 2,
    bound: float = 2.0,
    max_episode_steps: int = 50,
):
    """An ``EngineSpec`` of a made-up flat task (actions in [-bound, bound]): for agent tests
    that feed transitions by hand."""
    import torch

    from rlwb.engine.base import EngineSpec

    return EngineSpec(
        task_id="toy",
        num_envs=num_envs,
        observation_shape=(obs_dim,),
        action_dim=act_dim,
        action_low=torch.full((act_dim,), -bound),
        action_high=torch.full((act_dim,), bound),
        max_episode_steps=max_episode_steps,
        dt=0.05,
        device=torch.device("cpu"),
    )
