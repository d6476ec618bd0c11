"""InvertedDoublePendulum-v5 (Gymnasium ``inverted_double_pendulum_v5.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import MujocoTask, PhysicsView, noisy_reset


@dataclass
class InvertedDoublePendulum(MujocoTask):
    """Keep the tip (site 0) high: terminates when its height ``y <= 1``; reward is the alive
    bonus minus distance and velocity penalties. The observation includes the first entry
    of ``qfrc_constraint`` clipped to +-10, as Gymnasium's."""

    xml_file: str = "inverted_double_pendulum.xml"
    frame_skip: int = 5
    healthy_reward: float = 10.0
    reset_noise_scale: float = 0.1

    gym_id: ClassVar[str] = "InvertedDoublePendulum-v5"
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "site_xpos", "qfrc_constraint")
    numpy_math: ClassVar[bool] = True

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return 1 + 2 * (model.nq - 1) + model.nv + 1

    def observation(self, view: PhysicsView) -> torch.Tensor:
        qpos = view["qpos"]
        xp = ops(qpos)
        return xp.cat(
            [
                qpos[:, :1],
                xp.sin(qpos[:, 1:]),
                xp.cos(qpos[:, 1:]),
                xp.clip(view["qvel"], -10, 10),
                xp.clip(view["qfrc_constraint"][:, :1], -10, 10),
            ],
            1,
        )

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        return post["site_xpos"][:, 0, 2] <= 1

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = post["site_xpos"][:, 0, 0], post["site_xpos"][:, 0, 2]
        v1, v2 = post["qvel"][:, 1], post["qvel"][:, 2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive = self.healthy_reward * ops(x).as_float64(~self.terminated(post))
        info = {
            "reward_survive": alive,
            "distance_penalty": -dist_penalty,
            "velocity_penalty": -vel_penalty,
        }
        return alive - dist_penalty - vel_penalty, info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "normal")
