"""TD-MPC on DeepMind Control tasks (state observations), the authors' setting.

    python -m rlwb.experiments.tdmpc_dmc --train.task cheetah-run
    python -m rlwb.experiments.tdmpc_dmc --train.task walker-walk --train.seed 1

Action repeat comes from the authors' per-domain table (``ACTION_REPEAT``; 4 otherwise)
unless ``--train.task-kwargs action_repeat K`` sets it. Steps here are agent steps: the
published curves' "env steps" are agent steps x action repeat, so 500k env steps of
cheetah-run are 125k agent steps. 5,000 uniform random agent steps (the authors'
seed_steps), then one update per step; evaluation every 5,000 agent steps (20k env steps
at action repeat 4), 10 episodes.
"""

from dataclasses import dataclass, field

from rlwb.agents.tdmpc import TDMPC, TDMPCConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment

ACTION_REPEAT = {"walker": 2, "finger": 2, "humanoid": 2, "dog": 2, "cartpole": 8}


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="cheetah-run",
            total_steps=125_000,
            learning_starts=5_000,
            eval_every=5_000,
            checkpoint_every=25_000,
        )
    )
    agent: TDMPCConfig = field(default_factory=TDMPCConfig)

    def __post_init__(self) -> None:
        domain = self.train.task.split("-", 1)[0]
        repeat = ACTION_REPEAT.get(domain, 4)
        self.train.task_kwargs = {"action_repeat": repeat, **self.train.task_kwargs}


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(TDMPC, Config, argv, __doc__)


if __name__ == "__main__":
    main()
