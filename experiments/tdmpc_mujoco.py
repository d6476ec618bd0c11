"""TD-MPC on the Gymnasium MuJoCo suite (mujoco backend) with the authors' defaults.

    python -m rlwb.experiments.tdmpc_mujoco --train.task HalfCheetah-v5
    python -m rlwb.experiments.tdmpc_mujoco --train.task Hopper-v5 --train.seed 1

No action repeat: Gymnasium's v5 tasks already step 5 physics steps per action (HalfCheetah:
0.05 s, close to DMControl cheetah's 0.04 s at action repeat 4). The authors' settings
otherwise (``TDMPCConfig()``): 5,000 uniform random steps, then one update per step, 1M
steps; terminations stop bootstrapping (Hopper, Walker2d, Ant).
"""

from dataclasses import dataclass, field

from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="HalfCheetah-v5",
            total_steps=1_000_000,
            learning_starts=5_000,
            eval_every=20_000,
            checkpoint_every=50_000,
        )
    )
    agent: TDMPCConfig = field(default_factory=TDMPCConfig)


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(TDMPC, Config, argv, __doc__)


if __name__ == "__main__":
    main()
