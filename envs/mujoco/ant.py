"""Ant-v5: Gymnasium's quadruped, reproduced from the physics state in batched torch.

Matches ``gymnasium/envs/mujoco/ant_v5.py`` (Gymnasium 1.x): observation ``qpos[2:]``,
``qvel`` and the clipped external contact forces ``cfrc_ext[1:]`` (the worldbody's row is
dropped); reward forward velocity of ``main_body`` + healthy reward - control cost - contact
cost (v5 always charges contact cost, over all bodies); termination when the state is not
finite or the torso height leaves ``healthy_z_range`` (inclusive); reset noise uniform on
``qpos``, Gaussian on ``qvel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rlwb.envs.mujoco.arrays import TorchOps, ops
from rlwb.envs.mujoco.base import (
    MujocoTask,
    PhysicsView,
    noisy_reset,
    planar_motion_info,
)
from rlwb.errors import ConfigError


def load_model(task: MujocoTask):  # noqa: ANN201 - mujoco.MjModel
    """The task's own model, for constants when no backend has called ``setup``."""
    import mujoco

    return mujoco.MjModel.from_xml_path(task.model_path())


def on_device(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` on ``like``'s device as float64 (no copy when it already is)."""
    return t.to(device=like.device, dtype=torch.float64)


@dataclass
class Ant(MujocoTask):
    """Ant-v5 task; fields are ``AntEnv``'s constructor arguments with its defaults.

    ``main_body`` may be a body id or name; ``setup`` resolves it on the model. Info
    components: every scalar key of Gymnasium's ``info``.
    """

    xml_file: str = "ant.xml"
    frame_skip: int = 5
    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 0.5
    contact_cost_weight: float = 5e-4
    healthy_reward: float = 1.0
    main_body: int | str = 1
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] = (0.2, 1.0)
    contact_force_range: tuple[float, float] = (-1.0, 1.0)
    reset_noise_scale: float = 0.1
    exclude_current_positions_from_observation: bool = True
    include_cfrc_ext_in_observation: bool = True

    gym_id: ClassVar[str] = "Ant-v5"
    max_episode_steps: ClassVar[int] = 1000
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos", "cfrc_ext")
    pre_fields: ClassVar[tuple[str, ...]] = ("xpos",)
    numpy_math: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._body: int | None = None

    def setup(self, model) -> None:  # noqa: ANN001 - mujoco.MjModel
        """Resolve ``main_body`` to a body id of ``model``."""
        import mujoco

        body = self.main_body
        if isinstance(body, str):
            body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if body_id < 0:
                raise ConfigError(f"main_body {body!r} is not a body of {self.xml_file}")
            body = body_id
        if not 0 <= int(body) < model.nbody:
            raise ConfigError(f"main_body {body} is out of range (model has {model.nbody} bodies)")
        self._body = int(body)

    def _main_body(self) -> int:
        if self._body is None:
            self.setup(load_model(self))
        assert self._body is not None
        return self._body

    def observation_dim(self, model) -> int:  # noqa: ANN001 - mujoco.MjModel
        dim = model.nq + model.nv - 2 * self.exclude_current_positions_from_observation
        return dim + 6 * (model.nbody - 1) * self.include_cfrc_ext_in_observation

    def _contact_forces(self, view: PhysicsView) -> torch.Tensor:
        low, high = self.contact_force_range
        cfrc_ext = view["cfrc_ext"]
        return ops(cfrc_ext).clip(cfrc_ext, low, high)

    def observation(self, view: PhysicsView) -> torch.Tensor:
        qpos = (
            view["qpos"][:, 2:] if self.exclude_current_positions_from_observation else view["qpos"]
        )
        parts = [qpos, view["qvel"]]
        xp = ops(qpos)
        if self.include_cfrc_ext_in_observation:
            parts.append(xp.flatten(self._contact_forces(view)[:, 1:]))
        return xp.cat(parts, 1)

    def _is_healthy(self, view: PhysicsView) -> torch.Tensor:
        qpos, qvel = view["qpos"], view["qvel"]
        xp = ops(qpos)
        finite = xp.isfinite(qpos).all(1) & xp.isfinite(qvel).all(1)
        min_z, max_z = self.healthy_z_range
        return finite & (qpos[:, 2] >= min_z) & (qpos[:, 2] <= max_z)

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        body = self._main_body()
        xy_velocity = (post["xpos"][:, body, :2] - pre["xpos"][:, body, :2]) / dt
        forward = self.forward_reward_weight * xy_velocity[:, 0]
        xp = ops(forward)
        healthy = xp.as_float64(self._is_healthy(post)) * self.healthy_reward
        action = on_device(action, forward) if xp is TorchOps else action
        ctrl_cost = self.ctrl_cost_weight * (action * action).sum(1)
        forces = self._contact_forces(post)
        contact_cost = self.contact_cost_weight * (forces * forces).sum((1, 2))
        reward = forward + healthy - (ctrl_cost + contact_cost)
        qpos = post["qpos"]
        info = {
            **planar_motion_info(qpos[:, :2], xy_velocity),
            "reward_forward": forward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "reward_survive": healthy,
        }
        return reward, info

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        unhealthy = ~self._is_healthy(post)
        return unhealthy if self.terminate_when_unhealthy else ops(unhealthy).zeros_like(unhealthy)

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_reset(init_qpos, init_qvel, n, generator, self.reset_noise_scale, "normal")
