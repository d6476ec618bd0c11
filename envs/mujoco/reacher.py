"""Reacher-v5 (Gymnasium ``reacher_v5.py``): move a two-link arm's fingertip to a target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlwb.envs.mujoco.arrays import ops
from rlwb.envs.mujoco.base import MujocoTask, PhysicsView, body_id, control_cost, uniform


@dataclass
class Reacher(MujocoTask):
    """Reward ``-|fingertip - target| * w_dist - |a|^2 * w_ctrl``, computed after the step
    (Gymnasium 1.x v5 computes it after ``do_simulation``; v4 did so before). Positions
    are body frame positions (``xpos``), which Gymnasium's ``get_body_com`` returns.

    Reset: the goal is uniform in the disc of radius 0.2; Gymnasium draws it by rejection
    from the square, which we do as well, vectorized (same distribution, other draws)."""

    xml_file: str = "reacher.xml"
    frame_skip: int = 2
    reward_dist_weight: float = 1.0
    reward_control_weight: float = 1.0

    gym_id: ClassVar[str] = "Reacher-v5"
    max_episode_steps: ClassVar[int | None] = 50
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "xpos")
    numpy_math: ClassVar[bool] = True

    def setup(self, model) -> None:  # noqa: ANN001
        self._fingertip = body_id(model, "fingertip")
        self._target = body_id(model, "target")

    def _tip_to_target(self, view: PhysicsView) -> torch.Tensor:
        return view["xpos"][:, self._fingertip] - view["xpos"][:, self._target]

    def observation_dim(self, model) -> int:  # noqa: ANN001
        return 4 + (model.nq - 2) + 2 + 2

    def observation(self, view: PhysicsView, offset: Any = None) -> torch.Tensor:
        qpos, theta = view["qpos"], view["qpos"][:, :2]
        xp = ops(qpos)
        offset = self._tip_to_target(view) if offset is None else offset
        return xp.cat(
            [xp.cos(theta), xp.sin(theta), qpos[:, 2:], view["qvel"][:, :2], offset[:, :2]], 1
        )

    def reward(
        self,
        pre: PhysicsView,
        post: PhysicsView,
        action: torch.Tensor,
        dt: float,
        offset: Any = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        offset = self._tip_to_target(post) if offset is None else offset
        dist = -ops(offset).norm(offset, 1) * self.reward_dist_weight
        ctrl = -control_cost(action, self.reward_control_weight)
        return dist + ctrl, {"reward_dist": dist, "reward_ctrl": ctrl}

    def evaluate(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The fingertip-to-target offset once, for observation and reward."""
        offset = self._tip_to_target(post)
        reward, info = self.reward(pre, post, action, dt, offset)
        return self.observation(post, offset), reward, self.terminated(post), info

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        qpos = init_qpos + uniform(generator, (n, init_qpos.shape[0]), -0.1, 0.1, init_qpos)
        qpos[:, -2:] = rejection_sample(
            generator, n, lambda: uniform(generator, (n, 2), -0.2, 0.2, init_qpos),
            lambda goal: ops(goal).norm(goal, 1) < 0.2,
        )  # fmt: skip
        qvel = init_qvel + uniform(generator, (n, init_qvel.shape[0]), -0.005, 0.005, init_qvel)
        qvel[:, -2:] = 0
        return qpos, qvel


def rejection_sample(generator: torch.Generator, n: int, draw, accept) -> torch.Tensor:  # noqa: ANN001
    """Vectorized rejection sampling: ``draw()`` gives n candidates, ``accept(x)`` a mask;
    rows are redrawn until every row is accepted (expected draws: ``1 / P(accept)``)."""
    out = draw()
    todo = ~accept(out)
    for _ in range(1000):
        if not bool(todo.any()):
            return out
        fresh = draw()
        take = todo & accept(fresh)
        out[take] = fresh[take]
        todo &= ~take
    raise RuntimeError(f"rejection sampling did not finish (generator {generator})")
