"""InvertedPendulum-v5 (Gymnasium ``inverted_pendulum_v5.py``): balance a pole on a cart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
        return _fallen(self.observation(post))

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return _survival(self.terminated(post))

    def evaluate(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Observation and termination once: the reward is the termination's complement
        (a single-env step is mostly this math, not physics)."""
        obs = self.observation(post)
        fallen = _fallen(obs)
        survive, info = _survival(fallen)
        return obs, survive, fallen, info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "uniform")

    def reward_from_obs(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward ``[M]`` and termination ``[M]`` of transitions given as observations
        (model-based planners): exact, both depend on the next observation alone."""
        fallen = _fallen(next_obs)
        return (~fallen).to(next_obs.dtype), fallen


def _fallen(obs: Any) -> Any:
    """Gymnasium's termination: a non-finite observation or the pole past 0.2 rad."""
    return ~ops(obs).isfinite(obs).all(1) | (abs(obs[:, 1]) > 0.2)


def _survival(fallen: Any) -> tuple[Any, dict[str, Any]]:
    """Reward 1 while up, 0 on the falling step, and its info term."""
    survive = ops(fallen).as_float64(~fallen)
    return survive, {"reward_survive": survive}
