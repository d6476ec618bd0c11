"""DDPG + HER on the point-mass goal mazes (torch backend): GDG's baseline.

    rlwb train ddpg_her_maze                     # open maze
    rlwb train ddpg_her_maze --train.task PointMaze-UMaze-Goal-v0

Same runner settings as ``gdg_maze`` (episodes end on success, so ``eval/return_mean`` is
the success rate; ``probe/learned_vs_true`` pictures the final critic's reading of
distance, minus Q, against true steps-to-goal). Expect an evaluation success rate of 1.0
on the open maze after 10k steps.
"""

from dataclasses import dataclass, field

from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
from rlwb.experiments._goal_maze import log_goal_pictures, maze_train_config, task_presets
from rlwb.experiments._task_presets import config_for
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(default_factory=maze_train_config)
    agent: DDPGHERConfig = field(
        default_factory=lambda: DDPGHERConfig(hidden=(64, 64), batch_size=128)
    )


TASK_PRESETS = task_presets(Config)  # Gymnasium-Robotics' mazes: gym backend, their own settings


def main(argv: list[str] | None = None) -> TrainResult:
    config = config_for(argv, Config, TASK_PRESETS)
    return run_experiment(DDPGHER, config, argv, __doc__, on_end=log_goal_pictures)


if __name__ == "__main__":
    main()
