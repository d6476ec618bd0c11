"""dm_control ``cheetah`` run."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.dmc.base import DmcTask, sensor_columns, uniform
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

RUN_SPEED = 10.0
SETTLE_STEPS = 200


@dataclass
class CheetahRun(DmcTask):
    """Observation ``position`` (qpos[1:]) and ``velocity``; reward
    ``tolerance(torso subtree x velocity, (10, inf), margin=10, linear, 0 at margin)``.

    Reset: limited joints uniform in range, then 200 physics steps with zero control to
    settle (dm_control's ``physics.step(nstep=200)`` inside the reset context, replayed
    step for step: ``mj_step2`` from the forward at ``qpos0``, then 199 ``mj_step`` for all
    members at once with ``mujoco.rollout`` on MuJoCo's threads).
    The solver warm start of the settled pose is not carried over (the backend resets the
    data), which changes only the first step's solver start."""

    xml_name: ClassVar[str] = "cheetah.xml"
    domain: ClassVar[str] = "cheetah"
    task_name: ClassVar[str] = "run"
    time_limit: ClassVar[float] = 10.0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "sensordata")

    def bind(self, model) -> None:  # noqa: ANN001
        (self._speed,) = sensor_columns(model, "torso_subtreelinvel")[:1]
        self._limited = np.flatnonzero(model.jnt_limited == 1)
        self._qadr = model.jnt_qposadr[self._limited]
        self._settle_data: list = []  # MjData per rollout thread, made on first reset

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(position=view["qpos"][:, 1:].clone(), velocity=view["qvel"].clone())

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        speed = view["sensordata"][:, self._speed]
        return tolerance(
            speed, bounds=(RUN_SPEED, float("inf")), margin=RUN_SPEED, value_at_margin=0,
            sigmoid="linear",
        )  # fmt: skip

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import mujoco
        from mujoco import rollout

        low, high = self.mj_model.jnt_range[self._limited].T
        qpos[:, self._qadr] = uniform(generator, qpos.shape[0], low, high)
        model, data, n = self.mj_model, self._scratch, qpos.shape[0]
        spec = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
        start = np.empty((n, mujoco.mj_stateSize(model, spec)))
        warmstart = np.empty((n, model.nv))
        for k, row in enumerate(qpos.numpy()):
            mujoco.mj_resetData(model, data)
            mujoco.mj_forward(model, data)  # dm_control's reset: forward at qpos0
            data.qpos[:] = row
            mujoco.mj_step2(model, data)  # its legacy step resumes from that forward
            mujoco.mj_getState(model, data, start[k], spec)
            warmstart[k] = data.qacc_warmstart
        # the other 199 steps with zero control, all members at once on MuJoCo's threads
        threads = max(1, min(os.cpu_count() or 1, n // 8))
        if len(self._settle_data) != threads:
            self._settle_data = [mujoco.MjData(model) for _ in range(threads)]
        zero = np.zeros((n, SETTLE_STEPS - 1, model.nu))
        states, _ = rollout.rollout(
            model, self._settle_data, start, zero, initial_warmstart=warmstart
        )
        final = torch.from_numpy(states[:, -1])
        nq, nv = model.nq, model.nv
        return final[:, 1 : 1 + nq].clone(), final[:, 1 + nq : 1 + nq + nv].clone()
