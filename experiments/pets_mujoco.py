"""PETS (probabilistic ensemble, trajectory sampling, CEM) on the MuJoCo suite.

    rlwb train pets_mujoco                                      # InvertedPendulum-v5
    rlwb train pets_mujoco --train.seed 1 --train.total-steps 3000
    rlwb train pets_mujoco --train.task HalfCheetah-v5            # picks the cheetah preset

The first ``learning_starts`` steps act at random; after that the ensemble (5 Gaussian
MLPs, 64 wide here for 2 CPU cores; the paper's 200: ``--agent.ensemble.hidden 200``) is
trained on the agent's own replay every ``train_every`` steps and the agent plans through
it. Rewards come from the task's known function of observations where one exists
(InvertedPendulum, HalfCheetah, Hopper; see ``rlwb.planners.task_rewards``), else from a
learned reward head. ``--train.task HalfCheetah-v5`` picks a preset (``TASK_PRESETS``,
options still apply): 10k steps, one random episode first, ensemble width 128, training
every 1000 steps for at least 50 epochs of the replay, standardised targets, CEM 50 x 15 x
3 (mbrl-lib plans 30 steps; a small model's predictions lose the return's ranking within
~10 steps).
TensorBoard: ``losses/model_nll``, ``losses/model_holdout_mse`` (one-step error on
held-out transitions), ``losses/plan_ms_per_step``.
"""

from dataclasses import dataclass, field

from rlwb.agents.pets import PETS, PETSConfig
from rlwb.experiments._task_presets import config_for
from rlwb.planners import EnsembleConfig, SamplingConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="InvertedPendulum-v5",
            total_steps=2_000,
            learning_starts=250,
            updates_per_step=1,  # update() counts env steps; trains every train_every
            eval_every=1_000,
            eval_episodes=2,
            checkpoint_every=1_000,
            log_every=250,
        )
    )
    agent: PETSConfig = field(
        default_factory=lambda: PETSConfig(
            planner=SamplingConfig(samples=50, horizon=15, iterations=3, elites=5),
            ensemble=EnsembleConfig(hidden=64, particles=10),
        )
    )


@dataclass
class HalfCheetahConfig(Config):
    """mbrl-lib's schedule (a random first episode, training every 1000 steps for tens of
    epochs), with the ensemble, CEM and horizon cut to 2 CPU cores."""

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="HalfCheetah-v5",
            total_steps=10_000,
            learning_starts=1_000,
            updates_per_step=1,
            eval_every=3_000,
            eval_episodes=1,
            checkpoint_every=3_000,
            log_every=1_000,
        )
    )
    agent: PETSConfig = field(
        default_factory=lambda: PETSConfig(
            planner=SamplingConfig(samples=50, horizon=15, iterations=3, elites=5),
            ensemble=EnsembleConfig(hidden=128, particles=10, normalize_targets=True),
            train_every=1_000,
            train_epochs=50,
        )
    )


TASK_PRESETS: dict[str, type] = {"HalfCheetah-v5": HalfCheetahConfig}


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(PETS, config_for(argv, Config, TASK_PRESETS), argv, __doc__)


if __name__ == "__main__":
    main()
