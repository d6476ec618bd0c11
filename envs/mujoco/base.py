"""Contract of a MuJoCo task, shared by the ``mujoco`` (CPU) and ``warp`` (GPU) backends.

A task reproduces one Gymnasium MuJoCo v5 env from the physics state, vectorized in torch:
the backend steps the physics (``frame_skip`` MuJoCo steps per env step, with the action
written to ``ctrl``), gathers the MjData arrays the task names in ``fields`` into a
:class:`PhysicsView` of ``[B, ...]`` float64 tensors, and the task turns those into
observation, reward (with components) and termination. Reset noise is drawn from the
engine's ``torch.Generator`` with Gymnasium's distributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

# Fields a backend must be able to provide. Names and shapes follow mujoco.MjData
# (per member): qpos[nq], qvel[nv], xpos[nbody, 3], xipos[nbody, 3], cinert[nbody, 10],
# cvel[nbody, 6], qfrc_actuator[nv], cfrc_ext[nbody, 6], site_xpos[nsite, 3], ctrl[nu].
# cfrc_ext and cvel need mj_rnePostConstraint after the step, as Gymnasium calls it.
KNOWN_FIELDS = (
    "qpos", "qvel", "xpos", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext",
    "site_xpos", "ctrl",
)  # fmt: skip

PhysicsView = dict[str, torch.Tensor]


def gymnasium_asset(name: str) -> str:
    """Path of a model XML shipped with Gymnasium (the same file its envs load)."""
    import gymnasium.envs.mujoco as gm

    path = Path(gm.__file__).parent / "assets" / name
    if not path.exists():
        raise FileNotFoundError(f"Gymnasium asset {name!r} not found at {path}")
    return str(path)


@dataclass
class MujocoTask:
    """Base of every MuJoCo task definition; subclasses are dataclasses whose fields are
    Gymnasium's constructor arguments with Gymnasium's defaults.

    Subclasses set ``gym_id``, ``max_episode_steps``, ``fields`` (MjData arrays read after
    the step), ``pre_fields`` (arrays read before the step, e.g. the x position used for
    forward velocity, or the whole reward for Reacher/Pusher, which Gymnasium computes
    before simulating) and implement the four methods.
    """

    xml_file: str = ""
    frame_skip: int = 5

    # ClassVar: plain class attributes, not constructor fields (a dataclass field here would
    # silently override a subclass's ``fields = (...)``). A task whose needs depend on its
    # arguments may also set ``self.fields`` / ``self.pre_fields`` in ``__post_init__``.
    gym_id: ClassVar[str] = ""
    max_episode_steps: ClassVar[int] = 1000
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")
    pre_fields: ClassVar[tuple[str, ...]] = ()

    def bind(self, model) -> None:  # noqa: ANN001, B027 - mujoco.MjModel; optional hook
        """Cache model constants (body masses, timestep, body ids) as tensors.

        Backends call this once with the ``mujoco.MjModel`` they simulate, before the first
        reset; tasks that need no model constants keep this no-op.
        """

    def observation_dim(self, model) -> int:  # noqa: ANN001 - mujoco.MjModel
        """Length of the observation vector for this model."""
        raise NotImplementedError

    def observation(self, view: PhysicsView) -> torch.Tensor:
        """``[B, obs_dim]`` observation from the post-step physics view."""
        raise NotImplementedError

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reward ``[B]`` and its components (Gymnasium's ``info`` keys), float64."""
        raise NotImplementedError

    def terminated(self, post: PhysicsView) -> torch.Tensor:
        """``[B]`` bool: Gymnasium's ``terminated`` (unhealthy), never the time limit."""
        return torch.zeros(post["qpos"].shape[0], dtype=torch.bool, device=post["qpos"].device)

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(qpos[n, nq], qvel[n, nv])`` float64 drawn as Gymnasium's ``reset_model`` does."""
        raise NotImplementedError
