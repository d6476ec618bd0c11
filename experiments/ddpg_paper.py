"""DDPG with the paper's low-dimensional setting (Lillicrap et al. 2015, section 7) on MuJoCo.

    rlwb train ddpg_paper                                   # HalfCheetah-v5
    rlwb train ddpg_paper --train.task Hopper-v5 --train.seed 1
    rlwb train ddpg_paper --train.task InvertedPendulum-v5 --train.total-steps 20000

``DDPGConfig.paper()``: batch norm, Adam 1e-4 (actor) / 1e-3 (critic), L2 1e-2 on the
critic's weights, tau 0.001, batch 64, replay 1e6, OU noise (theta 0.15, sigma 0.2), 400-300
networks with the action entering the critic's second layer, final layers in U[+-3e-3].
The paper acts with its noisy policy from the first step; here the first 1,000 steps are
uniform random (the runner's ``learning_starts``) so the first batches are not 64 copies of
one start state. Budget: 1M steps (our choice, as ``ddpg_mujoco``); evaluation: 10
deterministic episodes every 10k steps. For rl-zoo3's setting use ``ddpg_mujoco``.
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
            learning_starts=1_000,
            eval_every=10_000,
            checkpoint_every=50_000,
        )
    )
    agent: DDPGConfig = field(default_factory=DDPGConfig.paper)


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DDPG, Config, argv, __doc__)


if __name__ == "__main__":
    main()
