"""Pusher-v5 (Gymnasium ``pusher_v5.py``): push a cylinder to a goal with a 7-DoF arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import MujocoTask, PhysicsView, body_id, control_cost, uniform
from rlwb.envs.mujoco.reacher import rejection_sample


@dataclass
class Pusher(MujocoTask):
    """Reward ``-w_near |object - tips_arm| - w_dist |object - goal| - w_ctrl |a|^2`` after
    the step (Gymnasium 1.x v5). Reset: arm at ``init_qpos`` (no position noise), goal at
    the origin, cylinder uniform in ``[-0.3, 0] x [-0.2, 0.2]`` rejected when within 0.17 of
    the goal (vectorized rejection sampling), velocities ``U(-0.005, 0.005)`` except the
    object's and goal's, which are zero."""

    xml_file: str = "pusher_v5.xml"
    frame_skip: int = 5
    reward_near_weight: float = 0.5
    reward_dist_weight: float = 1.0
    reward_control_weight: float = 0.1

    gym_id: ClassVar[str] = "Pusher-v5"
    max_episode_steps: ClassVar[int | None] = 100
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos")
    numpy_math: ClassVar[bool] = True

    def setup(self, model) -> None:  # noqa: ANN001
        self._tips = body_id(model, "tips_arm")
        self._object = body_id(model, "object")
        self._goal = body_id(model, "goal")

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return 7 + 7 + 9

    def observation(self, view: PhysicsView) -> torch.Tensor:
        xpos = view["xpos"]
        return ops(xpos).cat(
            [
                view["qpos"][:, :7],
                view["qvel"][:, :7],
                xpos[:, self._tips],
                xpos[:, self._object],
                xpos[:, self._goal],
            ],
            1,
        )

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        xpos = post["xpos"]
        obj, norm = xpos[:, self._object], ops(xpos).norm
        near = -norm(obj - xpos[:, self._tips], 1) * self.reward_near_weight
        dist = -norm(obj - xpos[:, self._goal], 1) * self.reward_dist_weight
        ctrl = -control_cost(action, self.reward_control_weight)
        info = {"reward_dist": dist, "reward_ctrl": ctrl, "reward_near": near}
        return dist + ctrl + near, info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xp = ops(init_qpos)
        qpos = xp.tile_rows(init_qpos, n)

        def draw() -> Any:  # a tensor, or numpy from the mujoco backend
            x = uniform(generator, (n, 1), -0.3, 0.0, init_qpos)
            y = uniform(generator, (n, 1), -0.2, 0.2, init_qpos)
            return xp.cat([x, y], 1)

        qpos[:, -4:-2] = rejection_sample(generator, n, draw, lambda c: xp.norm(c, 1) > 0.17)
        qpos[:, -2:] = 0.0
        qvel = init_qvel + uniform(generator, (n, init_qvel.shape[0]), -0.005, 0.005, init_qvel)
        qvel[:, -4:] = 0
        return qpos, qvel
