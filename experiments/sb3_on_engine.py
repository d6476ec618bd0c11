"""Stable-Baselines3 training on the rlwb engine through its SB3 ``VecEnv`` view.

    python -m rlwb.experiments.sb3_on_engine                      # PPO, InvertedPendulum-v5
    python -m rlwb.experiments.sb3_on_engine --algo td3 --task Pendulum-v1 --steps 15000

The engine (any backend; ``auto`` picks the fastest here) is the environment: SB3 sees a
``VecEnv`` with Monitor-style episode info, so its logging and ``evaluate_policy`` work
unchanged. Expect PPO to hold InvertedPendulum-v5 for 200+ steps after 10k steps (untrained:
about 25), in a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import torch
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.evaluation import evaluate_policy

from rlwb import make_engine
from rlwb.config import parse_cli


@dataclass
class Config:
    task: str = "InvertedPendulum-v5"
    """Any rlwb task or Gymnasium id."""
    backend: str = "auto"
    """Engine backend: auto, mujoco, warp, torch or gym."""
    algo: Literal["ppo", "td3"] = "ppo"
    """SB3 algorithm."""
    num_envs: int = 8
    """Engine members (SB3's n_envs)."""
    steps: int = 10_000
    """Training env steps (all members together)."""
    seed: int = 0
    eval_episodes: int = 8
    """Episodes for SB3's evaluate_policy, before and after training."""
    tensorboard_log: str | None = None
    """SB3's TensorBoard log folder (none by default)."""


def build_model(cfg: Config, venv) -> PPO | TD3:  # noqa: ANN001 - an SB3 VecEnv
    common = dict(seed=cfg.seed, device="cpu", tensorboard_log=cfg.tensorboard_log, verbose=0)
    if cfg.algo == "ppo":
        return PPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=4, learning_rate=1e-3,
                   **common)  # fmt: skip
    return TD3("MlpPolicy", venv, learning_starts=1_000, **common)


def main(argv: list[str] | None = None) -> tuple[float, float]:
    if argv is None:  # python -m: a bad option is one line and exit code 2, as `rlwb train`
        from rlwb.command import run_as_command

        return run_as_command(lambda: main(sys.argv[1:]))
    cfg = parse_cli(Config, argv, description=__doc__.split("\n\n")[0])
    torch.set_num_threads(1)  # small networks: one thread is fastest
    engine = make_engine(cfg.task, cfg.num_envs, backend=cfg.backend, seed=cfg.seed)
    venv = engine.as_sb3_vec_env()
    venv.seed(cfg.seed)
    model = build_model(cfg, venv)
    before, _ = evaluate_policy(model, venv, n_eval_episodes=cfg.eval_episodes)
    model.learn(cfg.steps)
    after, after_std = evaluate_policy(model, venv, n_eval_episodes=cfg.eval_episodes)
    print(
        f"{cfg.algo.upper()} on {cfg.task} ({engine.backend} backend, {cfg.num_envs} members): "
        f"return {before:.1f} before, {after:.1f} ± {after_std:.1f} after {cfg.steps} steps"
    )
    venv.close()
    return before, after


if __name__ == "__main__":
    main()
