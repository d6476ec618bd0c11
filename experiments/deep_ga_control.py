"""Deep GA (Such et al. 2017) on a control task; default MountainCarContinuous-v0 (torch).

    python -m rlwb.experiments.deep_ga_control           # or: rlwb train deep_ga_control
    python -m rlwb.experiments.deep_ga_control --train.task Pendulum-v1 --train.seed 1
    python -m rlwb.experiments.deep_ga_control --train.task CartpoleSwingup-v0

The paper's loop (truncation selection, Gaussian mutation, elite re-evaluated and carried
over) with a small population: N = 128 (127 children + the elite), T = 20, 64-64 tanh
networks, sigma 0.5, elite chosen from 10 candidates over 10 episodes. One checkpoint per
generation, holding seed lists only. Expect the elite to reach the MountainCar hilltop
(return about 90; untrained networks: about 0) within 2-3 generations, well under a minute.
"""

from dataclasses import dataclass, field

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="MountainCarContinuous-v0",
            total_steps=1_000_000,
            eval_every=200_000,
            checkpoint_every=1,  # every generation
        )
    )
    agent: DeepGAConfig = field(default_factory=lambda: DeepGAConfig(elite_episodes=10))


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DeepGA, Config, argv, __doc__)


if __name__ == "__main__":
    main()
