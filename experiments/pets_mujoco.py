"""PETS (probabilistic ensemble, trajectory sampling, CEM) on the MuJoCo suite.

    rlwb train pets_mujoco                                      # InvertedPendulum-v5
    rlwb train pets_mujoco --train.seed 1 --train.total-steps 3000
    rlwb train pets_mujoco --train.task HalfCheetah-v5            # picks the cheetah preset
    rlwb train pets_mujoco --train.task Hopper-v5                 # picks the hopper preset

The first ``learning_starts`` steps act at random; after that the ensemble is trained on
all of the agent's replay every ``train_every`` steps (epochs until the held-out error stops
improving) and the agent plans through it with PETS' CEM (truncated-normal samples,
variance bounded by the distance to the action bounds and smoothed). Rewards and
terminations come from the task's known function of observations (InvertedPendulum,
HalfCheetah, Hopper; the task's ``reward_from_obs``), else from a learned reward head.
``--train.task`` picks a preset (``TASK_PRESETS``; options still apply); every preset is
cut to 2 CPU cores (ensemble width, CEM population and horizon below mbrl-lib's), and the
agent's docstring lists each choice with the measurement behind it.

* InvertedPendulum-v5 (the default): 2,500 steps, 250 random; 5 x 64 ensemble that does not
  see the cart position; horizon 10 with the rest tie-break (survival-only reward), and
  plans that take the cart past 0.9 m count as falling (its rail is at 1 m); the best
  sequence's first action is executed (mbrl-lib's CEM can do either).
* HalfCheetah-v5: 10k steps, one random episode first; root angle as sine/cosine, x
  velocity predicted absolutely (PETS' cheetah pre/post-processing), standardised targets.
* Hopper-v5: termination from the observation (``Hopper.reward_from_obs``: a particle that
  falls collects no more reward), one random episode's worth of steps first.

TensorBoard: ``losses/model_nll``, ``losses/model_holdout_mse`` (one-step error on held-out
transitions), ``losses/model_epochs`` (epochs of the last round), ``losses/plan_ms_per_step``.
"""

from dataclasses import dataclass, field

from rlwb.agents.pets import PETS, PETSConfig
from rlwb.experiments._task_presets import config_for
from rlwb.planners import EnsembleConfig, SamplingConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment


def pets_cem(**overrides: object) -> SamplingConfig:
    """PETS' / mbrl-lib's CEM (truncated normal, smoothed variance, alpha 0.1, the mean of
    the last elites executed) at a population sized for 2 cores."""
    base = dict(sampling="truncated", samples=50, horizon=15, iterations=3, elites=5,
                momentum=0.1, init_std=0.5, min_std=0.0)  # fmt: skip
    return SamplingConfig(**{**base, **overrides})


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="InvertedPendulum-v5",
            total_steps=2_500,
            learning_starts=250,
            updates_per_step=1,  # update() counts env steps; trains every train_every
            eval_every=0,
            eval_episodes=2,
            checkpoint_every=1_000,
            log_every=250,
        )
    )
    agent: PETSConfig = field(
        default_factory=lambda: PETSConfig(
            planner=pets_cem(horizon=10, execute="best"),
            ensemble=EnsembleConfig(hidden=64, batch_size=32, particles=10, hidden_dims=(0,)),
            train_every=250,
            rest_tie_break=0.5,
            terminate_beyond=(0.9, 0.0, 0.0, 0.0),  # the cart's rail at 1 m
        )
    )


def _locomotion_train(task: str) -> TrainConfig:
    """10k steps, one random 1000-step episode first, an evaluation every 5k."""
    return TrainConfig(task=task, total_steps=10_000, learning_starts=1_000, updates_per_step=1,
                       eval_every=5_000, eval_episodes=1, checkpoint_every=5_000,
                       log_every=1_000)  # fmt: skip


@dataclass
class HalfCheetahConfig(Config):
    """mbrl-lib's schedule (a random first episode, training every 1000 steps until the
    held-out error stops improving) with the ensemble, CEM and horizon cut to 2 cores."""

    train: TrainConfig = field(default_factory=lambda: _locomotion_train("HalfCheetah-v5"))
    agent: PETSConfig = field(
        default_factory=lambda: PETSConfig(
            planner=pets_cem(horizon=15),
            ensemble=EnsembleConfig(
                hidden=128,
                particles=10,
                normalize_targets=True,
                angle_dims=(1,),
                absolute_dims=(8,),
            ),  # fmt: skip
            train_every=1_000,
            train_epochs=25,
        )
    )


@dataclass
class HopperConfig(Config):
    """Hopper-v5 with its termination from observations; otherwise the cheetah's sizes."""

    train: TrainConfig = field(default_factory=lambda: _locomotion_train("Hopper-v5"))
    agent: PETSConfig = field(
        default_factory=lambda: PETSConfig(
            planner=pets_cem(horizon=15),
            ensemble=EnsembleConfig(hidden=128, particles=10, normalize_targets=True),
            train_every=250,
            train_epochs=25,
        )
    )


TASK_PRESETS: dict[str, type] = {"HalfCheetah-v5": HalfCheetahConfig, "Hopper-v5": HopperConfig}


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(PETS, config_for(argv, Config, TASK_PRESETS), argv, __doc__)


if __name__ == "__main__":
    main()
