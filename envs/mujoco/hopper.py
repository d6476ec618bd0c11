"""Hopper-v5 (Gymnasium ``hopper_v5.py``): hop forward without falling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import (
    LocomotionTask,
    PhysicsView,
    control_cost,
    forward_velocity,
    in_open_range,
    noisy_reset,
)


@dataclass
class Hopper(LocomotionTask):
    """Healthy while every ``qpos[2:], qvel`` entry is inside ``healthy_state_range``, the
    torso height inside ``healthy_z_range`` and its angle inside ``healthy_angle_range``
    (all strict bounds); observation velocities are clipped to +-10 as in Gymnasium."""

    xml_file: str = "hopper.xml"
    frame_skip: int = 4
    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 1e-3
    healthy_reward: float = 1.0
    terminate_when_unhealthy: bool = True
    healthy_state_range: tuple[float, float] = (-100.0, 100.0)
    healthy_z_range: tuple[float, float] = (0.7, float("inf"))
    healthy_angle_range: tuple[float, float] = (-0.2, 0.2)
    reset_noise_scale: float = 5e-3
    exclude_current_positions_from_observation: bool = True

    gym_id: ClassVar[str] = "Hopper-v5"
    velocity_clip: ClassVar[float | None] = 10.0

    def setup(self, model) -> None:  # noqa: ANN001
        self._init_z = float(model.qpos0[1])

    def is_healthy(self, post: PhysicsView) -> torch.Tensor:
        qpos, qvel = post["qpos"], post["qvel"]
        xp = ops(qpos)
        state = xp.cat([qpos[:, 2:], qvel], 1)
        healthy_state = xp.all(in_open_range(state, self.healthy_state_range), 1)
        healthy_z = in_open_range(qpos[:, 1], self.healthy_z_range)
        healthy_angle = in_open_range(qpos[:, 2], self.healthy_angle_range)
        return healthy_state & healthy_z & healthy_angle

    def terminated(self, post: PhysicsView, healthy: torch.Tensor | None = None) -> torch.Tensor:
        unhealthy = ~(self.is_healthy(post) if healthy is None else healthy)
        return unhealthy if self.terminate_when_unhealthy else ops(unhealthy).zeros_like(unhealthy)

    def reward(
        self,
        pre: PhysicsView,
        post: PhysicsView,
        action: torch.Tensor,
        dt: float,
        healthy: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return walker_reward(self, pre, post, action, dt, self._init_z, healthy)

    def evaluate(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The health test once for reward and termination (it is most of the math)."""
        healthy = self.is_healthy(post)
        reward, info = self.reward(pre, post, action, dt, healthy)
        return self.observation(post), reward, self.terminated(post, healthy), info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "uniform")

    def reward_from_obs(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward ``[M]`` and termination ``[M]`` of transitions given as observations
        (model-based planners). Termination is :meth:`is_healthy` on the next observation
        (its velocities clipped to +-10, as observed) or a non-finite entry. The reward uses
        the next observation's x velocity instead of the differenced x position (an
        approximation, as for HalfCheetah) and counts the healthy bonus on every step,
        the terminating one included."""
        skip = self._skip()
        z, angle, state = next_obs[:, 1 - skip], next_obs[:, 2 - skip], next_obs[:, 2 - skip :]
        healthy = (
            in_open_range(z, self.healthy_z_range)
            & in_open_range(angle, self.healthy_angle_range)
            & in_open_range(state, self.healthy_state_range).all(1)
            & torch.isfinite(next_obs).all(1)
        )
        x_velocity = next_obs[:, 6 - skip]  # qvel[0], after the positions
        reward = self.healthy_reward + self.forward_reward_weight * x_velocity
        reward = reward - self.ctrl_cost_weight * (action**2).sum(1)
        unhealthy = ~healthy if self.terminate_when_unhealthy else torch.zeros_like(healthy)
        return reward, unhealthy


def walker_reward(
    task: Hopper,
    pre: PhysicsView,
    post: PhysicsView,
    action: torch.Tensor,
    dt: float,
    init_z: float,
    healthy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hopper's and Walker2d's shared reward: forward + healthy bonus - control cost
    (``healthy``: the task's ``is_healthy(post)`` when the caller has it already)."""
    x_velocity = forward_velocity(pre, post, dt)
    forward = task.forward_reward_weight * x_velocity
    healthy = task.is_healthy(post) if healthy is None else healthy
    healthy = ops(forward).as_float64(healthy) * task.healthy_reward
    ctrl = control_cost(action, task.ctrl_cost_weight)
    info = {
        "x_position": post["qpos"][:, 0],
        "z_distance_from_origin": post["qpos"][:, 1] - init_z,
        "x_velocity": x_velocity,
        "reward_forward": forward,
        "reward_ctrl": -ctrl,
        "reward_survive": healthy,
    }
    return forward + healthy - ctrl, info
