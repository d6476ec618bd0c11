"""GA-NS against GA on the deceptive point maze (torch backend), by one flag.

    python -m rlwb.experiments.ga_ns_maze                  # GA-NS (or: rlwb train ga_ns_maze)
    python -m rlwb.experiments.ga_ns_maze --agent.no-novelty     # plain GA, same budget
    python -m rlwb.experiments.ga_ns_maze --train.seed 1

The goal sits above a cup that opens towards the start: following the dense reward (minus
the distance to the goal) leads into the cup, 2 cells under the goal. The maze is scaled by
2 (``maze_size_scaling``) so random networks rarely end at the goal by luck. GA-NS ranks
children by the novelty of their final (x, y) (k = 10 nearest in population + archive,
archive probability 0.05 at this small population); GA by return. Watch
``charts/success_max`` (1 when some child ends at the goal) and ``charts/distance_min`` in
TensorBoard: once the populations settle, GA's stay at ~3.2 (the cup) and GA-NS's keep
reaching the goal (tests/test_deep_ga.py checks this). The elite, which ``rlwb eval`` runs, is
chosen by reward in both modes, so GA-NS's elite is not the point here: its population is.
"""

from dataclasses import dataclass, field

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="PointMaze-Deceptive-Dense-v0",
            task_kwargs={"maze_size_scaling": 2.0},
            total_steps=600_000,
            eval_every=100_000,
            checkpoint_every=1,  # every generation
        )
    )
    agent: DeepGAConfig = field(
        default_factory=lambda: DeepGAConfig(
            population=64,
            sigma=0.1,
            elite_candidates=4,
            elite_episodes=2,
            novelty=True,
            archive_probability=0.05,
        )  # fmt: skip
    )


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DeepGA, Config, argv, __doc__)


if __name__ == "__main__":
    main()
