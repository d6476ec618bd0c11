"""TD-MPC on Pendulum-v1 (torch backend): the small task the tests learn.

    python -m rlwb.experiments.tdmpc_pendulum            # or: rlwb train tdmpc_pendulum
    python -m rlwb.experiments.tdmpc_pendulum --train.seed 1 --agent.planner cem

``TDMPCConfig.small()`` (narrow networks, 128 samples, short schedules), 1,000 uniform
random steps, then one update per step.
"""

from dataclasses import dataclass, field

from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Pendulum-v1",
            total_steps=6_000,
            learning_starts=1_000,
            eval_every=1_000,
            eval_episodes=5,
            checkpoint_every=2_000,
        )
    )
    agent: TDMPCConfig = field(default_factory=TDMPCConfig.small)


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(TDMPC, Config, argv, __doc__)


if __name__ == "__main__":
    main()
