"""DDPG from pixels, the paper's setting (Lillicrap et al. 2015, section 7), on DMC cartpole.

    rlwb train ddpg_pixels                                       # cartpole-swingup
    rlwb train ddpg_pixels --train.total-env-steps 300000 --train.seed 1
    rlwb train ddpg_pixels --train.task cheetah-run

Observations are 64 x 64 RGB renders, 3 frames stacked, action repeat 3 (the paper's
pixel inputs; ``--train.task-kwargs``). DDPG sees an image observation space and builds
its pixel networks (``DDPGConfig.pixels()``): 3 conv layers of 32 filters, then 200-200
fully connected, batch 16, final layers in U[+-3e-4], the rest as the low-dimensional
``paper()`` setting without batch norm. Kernel sizes and strides (3 and 2 here), shared
or separate encoders (separate here) and where the action enters the critic beyond "after
the convolutions" (its first fully connected layer here) are not given by the paper. The
replay keeps each frame once. Budget: 1M env steps (our choice), counted in env steps
(agent steps x 3); evaluation every 30k env steps, 10 episodes; 1,000 uniform random agent
steps first, as ``ddpg_paper``.
"""

from dataclasses import dataclass, field

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment

PIXELS = {"observation": "pixels", "image_size": 64, "frame_stack": 3, "action_repeat": 3}


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="cartpole-swingup",
            total_env_steps=1_000_000,
            learning_starts=1_000,
            eval_every=10_000,
            checkpoint_every=50_000,
        )
    )
    agent: DDPGConfig = field(default_factory=DDPGConfig.pixels)

    def __post_init__(self) -> None:
        # the pixel setting joins here (a non-empty default would fix the option's keys);
        # task arguments given on the command line change it
        self.train.task_kwargs = {**PIXELS, **self.train.task_kwargs}


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DDPG, Config, argv, __doc__)


if __name__ == "__main__":
    main()
