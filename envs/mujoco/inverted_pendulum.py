"""InvertedPendulum-v5 (Gymnasium ``inverted_pendulum_v5.py``): balance a pole on a cart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import MujocoTask, PhysicsView, noisy_reset


@dataclass
class InvertedPendulum(MujocoTask):
    """Observation ``[qpos, qvel]``; reward 1 while the pole angle stays within +-0.2 rad
    (and the observation is finite), 0 on the terminating step."""

    xml_file: str = "inverted_pendulum.xml"
    frame_skip: int = 2
    reset_noise_scale: float = 0.01

    gym_id: ClassVar[str] = "InvertedPendulum-v5"
    numpy_math: ClassVar[bool] = True

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return model.nq + model.nv

    def observation(self, view: PhysicsView) -> torch.Tensor:
        return ops(view["qpos"]).cat([view["qpos"], view["qvel"]], 1)

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        obs = self.observation(post)
        return ~ops(obs).isfinite(obs).all(1) | (abs(obs[:, 1]) > 0.2)

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        survive = ops(post["qpos"]).as_float64(~self.terminated(post))
        return survive, {"reward_survive": survive}

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "uniform")
