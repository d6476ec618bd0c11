"""Goal-conditioned Reacher: Reacher-v5's arm and target with a goal observation and a
sparse reward, for hindsight relabelling (GDG, DDPG + HER).

Observation ``[cos q1, cos q2, sin q1, sin q2, dq1, dq2, tip_x, tip_y, target_x,
target_y]``: ``observation`` (0:6), ``achieved_goal`` = fingertip (6:8), ``desired_goal`` =
target (8:10) (``observation_slices``). Reward ``sparse`` = 1 when the fingertip is within
``success_distance`` (0.02, the fingertip's and target's radii added) of the target, else
0; ``dense`` = minus the distance. The target has no contacts, so relabelling it in the
observation is consistent with the physics. Reset, dynamics and time limit are Reacher-v5's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import PhysicsView
from rlwb.envs.mujoco.reacher import Reacher
from rlwb.errors import ConfigError


@dataclass
class GoalReacher(Reacher):
    reward_type: str = "sparse"
    success_distance: float = 0.02

    gym_id: ClassVar[str] = ""
    observation_slices: ClassVar[dict[str, tuple[int, int]]] = {
        "observation": (0, 6),
        "achieved_goal": (6, 8),
        "desired_goal": (8, 10),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward_type not in ("sparse", "dense"):
            raise ConfigError(f"reward_type must be 'sparse' or 'dense', got {self.reward_type!r}")

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return 10

    def observation(self, view: PhysicsView) -> torch.Tensor:
        theta = view["qpos"][:, :2]
        xpos = view["xpos"]
        xp = ops(xpos)
        return xp.cat(
            [
                xp.cos(theta),
                xp.sin(theta),
                view["qvel"][:, :2],
                xpos[:, self._fingertip, :2],
                xpos[:, self._target, :2],
            ],
            1,
        )

    def goal_reached(self, achieved: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        return ops(achieved).norm(achieved - desired, -1) <= self.success_distance

    def compute_reward(self, achieved: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        if self.reward_type == "dense":
            return -ops(achieved).norm(achieved - desired, -1)
        return ops(achieved).cast_like(self.goal_reached(achieved, desired), achieved)

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._reward_of(self.observation(post))

    def _reward_of(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dist = ops(obs).norm(obs[:, 6:8] - obs[:, 8:10], 1)
        reward = self.compute_reward(obs[:, 6:8], obs[:, 8:10])
        success = ops(obs).as_float64(dist <= self.success_distance)
        return reward, {"distance": dist, "success": success}

    def evaluate(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The observation once: the reward reads its goal slices."""
        obs = self.observation(post)
        reward, info = self._reward_of(obs)
        return obs, reward, self.terminated(post), info
