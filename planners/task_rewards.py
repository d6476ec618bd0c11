"""Rewards and terminations computed from observations, for planning with learned models.

PETS predicts next observations; the reward of a predicted step then comes from a known
function of ``(obs, action, next_obs)`` where the task allows it, else from a learned reward
head. ``TASK_REWARDS`` lists the tasks with a known function (default task arguments):

* ``InvertedPendulum-v5``: 1 per step until ``|angle| > 0.2`` (exact).
* ``HalfCheetah-v5``: ``x_velocity - 0.1 |a|^2`` with the x velocity of the next observation
  (Gymnasium differences the x position over the step, which the observation lacks: an
  approximation, as in PETS' own cheetah reward).
* ``Hopper-v5``: ``1 + x_velocity - 1e-3 |a|^2``; terminated when unhealthy (z <= 0.7,
  ``|angle| >= 0.2`` or a state entry beyond 100). Same x-velocity approximation.
* ``Pendulum-v1``: ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`` from the observation before
  the step (exact).

Every other task uses the learned reward head and no termination.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(obs[M, O], action[M, A], next_obs[M, O]) -> (reward[M], terminated[M] bool)``."""


def _not_finite(x: torch.Tensor) -> torch.Tensor:
    return ~torch.isfinite(x).all(1)


def inverted_pendulum(obs, action, next_obs):  # noqa: ANN001, ANN201
    terminated = _not_finite(next_obs) | (next_obs[:, 1].abs() > 0.2)
    return (~terminated).to(next_obs.dtype), terminated


def half_cheetah(obs, action, next_obs):  # noqa: ANN001, ANN201
    reward = next_obs[:, 8] - 0.1 * (action**2).sum(1)
    return reward, torch.zeros_like(reward, dtype=torch.bool)


def hopper(obs, action, next_obs):  # noqa: ANN001, ANN201
    healthy = (
        (next_obs[:, 0] > 0.7)
        & (next_obs[:, 1].abs() < 0.2)
        & (next_obs[:, 1:].abs() < 100).all(1)
        & torch.isfinite(next_obs).all(1)
    )
    reward = 1.0 + next_obs[:, 5] - 1e-3 * (action**2).sum(1)
    return reward, ~healthy


def pendulum(obs, action, next_obs):  # noqa: ANN001, ANN201
    theta = torch.atan2(obs[:, 1], obs[:, 0])
    u = action[:, 0].clamp(-2, 2)
    reward = -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * u**2)
    return reward, torch.zeros_like(reward, dtype=torch.bool)


TASK_REWARDS: dict[str, RewardFn] = {
    "InvertedPendulum-v5": inverted_pendulum,
    "HalfCheetah-v5": half_cheetah,
    "Hopper-v5": hopper,
    "Pendulum-v1": pendulum,
}


def task_reward(task_id: str, task_kwargs: dict | None = None) -> RewardFn | None:
    """The known reward function of ``task_id`` with default arguments, else None."""
    if task_kwargs:
        return None  # changed weights or ranges: the fixed functions above would be wrong
    return TASK_REWARDS.get(task_id)
