"""Goal-distance gradient (GDG) on the point-mass goal mazes (torch backend).

    rlwb train gdg_maze                                         # open maze, bridge points on
    rlwb train gdg_maze --train.task PointMaze-Deceptive-Goal-v0 --agent.no-bridges \\
        --train.task-kwargs.max-episode-steps 100 --train.task-kwargs.goal-cell-prob 0.5

Episodes end on success, so ``eval/return_mean`` is the success rate; ``losses/`` carries
the training success rate, final distance, bridge points planned and the distance probe
(Spearman rank correlation of learned against true steps-to-goal, and both means);
``probe/learned_vs_true`` is a scatter of the final critic's distance against the true one
and ``bridges/points`` a picture of the maze with the bridge points of a final evaluation.
Expect an evaluation success rate of 1.0 on the open maze after 10k steps (about 2 minutes
on 2 CPU cores). On the deceptive maze (the second command, without ``--agent.no-bridges``
and with ``--train.total-steps 20000``) bridge points reach the goal behind the cup on
nearly every seed by 20k steps, GDG alone on about a third (benchmarks/RESULTS.md, "a bridge
graph of observed transitions"); seed 3 logs 0.96 and 1.00 at 10k and 20k.
"""

from dataclasses import dataclass, field

from rlwb.agents.goal.gdg import GDG, GDGConfig
from rlwb.experiments._goal_maze import log_goal_pictures, maze_train_config, task_presets
from rlwb.experiments._task_presets import config_for
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(default_factory=maze_train_config)
    agent: GDGConfig = field(default_factory=lambda: GDGConfig(hidden=(64, 64), batch_size=128))


TASK_PRESETS = task_presets(Config)  # Gymnasium-Robotics' mazes: gym backend, their own settings


def main(argv: list[str] | None = None) -> TrainResult:
    config = config_for(argv, Config, TASK_PRESETS)
    return run_experiment(GDG, config, argv, __doc__, on_end=log_goal_pictures)


if __name__ == "__main__":
    main()
