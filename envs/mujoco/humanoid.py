"""Humanoid-v5: Gymnasium's biped, reproduced from the physics state in batched torch.

Matches ``gymnasium/envs/mujoco/humanoid_v5.py`` (Gymnasium 1.x): observation ``qpos[2:]``,
``qvel``, ``cinert[1:]``, ``cvel[1:]``, ``qfrc_actuator[6:]`` and ``cfrc_ext[1:]`` (v5 drops
the worldbody's rows and the free joint's actuator forces); reward forward velocity of the
mass center (``body_mass``-weighted ``xipos``) + healthy reward - control cost on ``ctrl`` -
clipped contact cost; termination when the torso height leaves ``healthy_z_range``
(exclusive); reset noise uniform on ``qpos`` and ``qvel``.

Deviation: Gymnasium's info also holds ``tendon_length``/``tendon_velocity`` arrays; the
components here are the scalar keys only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from rlwb.envs.mujoco.ant import load_model, on_device
from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import (
    MujocoTask,
    PhysicsView,
    in_open_range,
    mass_center,
    noisy_reset,
    planar_motion_info,
)

HUMANOID_FIELDS = ("qpos", "qvel", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext", "ctrl")


@dataclass
class HumanoidObservation(MujocoTask):
    """Observation, constants and reset shared by Humanoid-v5 and HumanoidStandup-v5."""

    reset_noise_scale: float = 1e-2
    exclude_current_positions_from_observation: bool = True
    include_cinert_in_observation: bool = True
    include_cvel_in_observation: bool = True
    include_qfrc_actuator_in_observation: bool = True
    include_cfrc_ext_in_observation: bool = True

    numpy_math: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._consts: dict[str, torch.Tensor] | None = None
        self._np_consts: dict[str, np.ndarray] = {}

    def setup(self, model) -> None:  # noqa: ANN001 - mujoco.MjModel
        """Cache ``body_mass``, ``qpos0`` and the physics timestep as float64 arrays."""
        self._np_consts = {
            "body_mass": np.array(model.body_mass, dtype=np.float64),
            "init_qpos": np.array(model.qpos0, dtype=np.float64),
            "timestep": np.array(float(model.opt.timestep)),
        }
        self._consts = {k: torch.from_numpy(v) for k, v in self._np_consts.items()}

    def const(self, name: str, like: Any) -> Any:
        """Model constant ``name`` in ``like``'s library and device (loads the task's own XML
        if not set up)."""
        if self._consts is None:
            self.setup(load_model(self))
        assert self._consts is not None
        if isinstance(like, np.ndarray):
            return self._np_consts[name]
        value = self._consts[name]
        if value.device != like.device:
            value = self._consts[name] = on_device(value, like)
        return value

    def observation_dim(self, model) -> int:  # noqa: ANN001 - mujoco.MjModel
        bodies = model.nbody - 1
        dim = model.nq + model.nv - 2 * self.exclude_current_positions_from_observation
        dim += 10 * bodies * self.include_cinert_in_observation
        dim += 6 * bodies * self.include_cvel_in_observation
        dim += (model.nv - 6) * self.include_qfrc_actuator_in_observation
        return dim + 6 * bodies * self.include_cfrc_ext_in_observation

    def observation(self, view: PhysicsView) -> torch.Tensor:
        qpos = (
            view["qpos"][:, 2:] if self.exclude_current_positions_from_observation else view["qpos"]
        )
        parts = [qpos, view["qvel"]]
        xp = ops(qpos)
        if self.include_cinert_in_observation:
            parts.append(xp.flatten(view["cinert"][:, 1:]))
        if self.include_cvel_in_observation:
            parts.append(xp.flatten(view["cvel"][:, 1:]))
        if self.include_qfrc_actuator_in_observation:
            parts.append(view["qfrc_actuator"][:, 6:])
        if self.include_cfrc_ext_in_observation:
            parts.append(xp.flatten(view["cfrc_ext"][:, 1:]))
        return xp.cat(parts, 1)

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "uniform")


@dataclass
class Humanoid(HumanoidObservation):
    """Humanoid-v5 task; fields are ``HumanoidEnv``'s constructor arguments with its defaults."""

    xml_file: str = "humanoid.xml"
    frame_skip: int = 5
    forward_reward_weight: float = 1.25
    ctrl_cost_weight: float = 0.1
    contact_cost_weight: float = 5e-7
    contact_cost_range: tuple[float, float] = (-math.inf, 10.0)
    healthy_reward: float = 5.0
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] = (1.0, 2.0)

    gym_id: ClassVar[str] = "Humanoid-v5"
    max_episode_steps: ClassVar[int] = 1000
    fields: ClassVar[tuple[str, ...]] = HUMANOID_FIELDS
    pre_fields: ClassVar[tuple[str, ...]] = ("xipos",)

    def mass_center_xy(self, view: PhysicsView) -> torch.Tensor:
        """``[B, 2]`` mass-weighted mean of the bodies' ``xipos``, as Gymnasium's helper."""
        xipos = view["xipos"]
        return mass_center(xipos, self.const("body_mass", xipos))[:, :2]

    def _is_healthy(self, view: PhysicsView) -> torch.Tensor:
        return in_open_range(view["qpos"][:, 2], self.healthy_z_range)

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        xy_velocity = (self.mass_center_xy(post) - self.mass_center_xy(pre)) / dt
        forward = self.forward_reward_weight * xy_velocity[:, 0]
        xp = ops(forward)
        healthy = xp.as_float64(self._is_healthy(post)) * self.healthy_reward
        ctrl, cfrc_ext = post["ctrl"], post["cfrc_ext"]
        ctrl_cost = self.ctrl_cost_weight * (ctrl * ctrl).sum(1)
        low, high = self.contact_cost_range
        contact = self.contact_cost_weight * (cfrc_ext * cfrc_ext).sum((1, 2))
        contact_cost = xp.clip(contact, low, high)
        reward = forward + healthy - (ctrl_cost + contact_cost)
        qpos = post["qpos"]
        info = {
            **planar_motion_info(qpos[:, :2], xy_velocity),
            "reward_survive": healthy,
            "reward_forward": forward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
        }
        return reward, info

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        unhealthy = ~self._is_healthy(post)
        return unhealthy if self.terminate_when_unhealthy else ops(unhealthy).zeros_like(unhealthy)
