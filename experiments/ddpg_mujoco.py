"""DDPG on the Gymnasium MuJoCo suite (mujoco backend) with rl-zoo3's DDPG setting.

    python -m rlwb.experiments.ddpg_mujoco --train.task HalfCheetah-v5
    python -m rlwb.experiments.ddpg_mujoco --train.task Hopper-v5 --train.seed 1
    python -m rlwb.experiments.ddpg_mujoco --train.task Walker2d-v5 --agent.noise ou

Defaults follow rl-zoo3 for MuJoCo DDPG: 1M steps, 10k uniform random steps first, Gaussian
noise 0.1, batch 256, lr 1e-3, tau 0.005, 400-300 networks (``DDPGConfig.modern()``), one
gradient update per environment step. Evaluation: 10 deterministic episodes every 10k steps.
"""

from dataclasses import dataclass, field

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="HalfCheetah-v5",
            total_steps=1_000_000,
            learning_starts=10_000,
            eval_every=10_000,
            checkpoint_every=50_000,
        )
    )
    agent: DDPGConfig = field(default_factory=DDPGConfig.modern)


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DDPG, Config, argv, __doc__)


if __name__ == "__main__":
    main()
