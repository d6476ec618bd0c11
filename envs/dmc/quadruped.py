"""dm_control ``quadruped`` walk and run."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.dmc.base import XMAT, DmcTask, contact_count, object_id, randn, sensor_columns
from rlwb.envs.dmc.rewards import tolerance
from rlwb.envs.mujoco.base import PhysicsView

MAX_HEIGHT_ATTEMPTS = 10000


@dataclass
class QuadrupedWalk(DmcTask):
    """Observation ``egocentric_state`` (hinge qpos, hinge qvel, actuator activations),
    ``torso_velocity`` (velocimeter), ``torso_upright`` (torso ``xmat`` zz), ``imu``
    (accelerometer, gyro) and ``force_torque`` (arcsinh of the toe force/torque sensors);
    reward ``upright * move``. The model is dm_control's ``make_model(floor_size=
    20 * speed)`` (the XML with terrain, rangefinders, walls and ball removed).

    Reset: a uniformly random torso orientation (normalised ``N(0, 1)^4``), lifted from
    z = 0 in 1 cm steps until nothing touches (dm_control's ``_find_non_contacting_height``,
    the same float accumulation), per member on the task's CPU ``MjData``."""

    xml_name: ClassVar[str] = "quadruped.xml"
    domain: ClassVar[str] = "quadruped"
    task_name: ClassVar[str] = "walk"
    render_camera_id: ClassVar[int] = 2  # TD-MPC renders quadruped from camera 2
    time_limit: ClassVar[float] = 20.0
    control_timestep: ClassVar[float | None] = 0.02
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel", "act", "xmat", "sensordata")
    speed: ClassVar[float] = 0.5

    def load_model(self, path: str):  # noqa: ANN201 - mujoco.MjModel
        import mujoco
        from dm_control.suite import common, quadruped

        xml = quadruped.make_model(floor_size=self.time_limit * self.speed)
        return mujoco.MjModel.from_xml_string(xml, common.ASSETS)

    def bind(self, model) -> None:  # noqa: ANN001
        import mujoco

        st, jt = mujoco.mjtSensor, mujoco.mjtJoint

        def sensors_of(*types: int) -> list[str]:
            ids = np.flatnonzero(np.isin(model.sensor_type, [int(t) for t in types]))
            return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, int(i)) for i in ids]

        hinges = np.flatnonzero(model.jnt_type == int(jt.mjJNT_HINGE))
        self._hinge_q = model.jnt_qposadr[hinges].tolist()
        self._hinge_v = model.jnt_dofadr[hinges].tolist()
        self._torso = object_id(model, "body", "torso")
        self._velocimeter = sensor_columns(model, "velocimeter")
        self._imu = sensor_columns(model, *sensors_of(st.mjSENS_GYRO, st.mjSENS_ACCELEROMETER))
        self._force_torque = sensor_columns(model, *sensors_of(st.mjSENS_FORCE, st.mjSENS_TORQUE))
        root = object_id(model, "joint", "root")
        self._root = int(model.jnt_qposadr[root])

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        s = view["sensordata"]
        egocentric = torch.cat(
            [view["qpos"][:, self._hinge_q], view["qvel"][:, self._hinge_v], view["act"]], dim=1
        )
        return OrderedDict(
            egocentric_state=egocentric,
            torso_velocity=s[:, self._velocimeter],
            torso_upright=view["xmat"][:, self._torso, XMAT["zz"]][:, None],
            imu=s[:, self._imu],
            force_torque=torch.arcsinh(s[:, self._force_torque]),
        )

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        upright = tolerance(
            view["xmat"][:, self._torso, XMAT["zz"]], bounds=(1.0, float("inf")),
            sigmoid="linear", margin=2.0, value_at_margin=0,
        )  # fmt: skip
        move = tolerance(
            view["sensordata"][:, self._velocimeter[0]], bounds=(self.speed, float("inf")),
            margin=self.speed, value_at_margin=0.5, sigmoid="linear",
        )  # fmt: skip
        return upright * move

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import mujoco

        n = qpos.shape[0]
        quat = randn(generator, n, 4)
        quat = quat / torch.linalg.vector_norm(quat, dim=1, keepdim=True)
        model, data, r = self.mj_model, self._scratch, self._root
        for k in range(n):
            z, attempts = 0.0, 0
            while True:
                mujoco.mj_resetData(model, data)
                data.qpos[r : r + 3] = (0.0, 0.0, z)
                data.qpos[r + 3 : r + 7] = quat[k].numpy()
                if contact_count(model, data) == 0:
                    break
                z += 0.01
                attempts += 1
                if attempts > MAX_HEIGHT_ATTEMPTS:
                    raise RuntimeError("no contact-free height for the quadruped")
            qpos[k] = torch.from_numpy(data.qpos.copy())
        return qpos, qvel


@dataclass
class QuadrupedRun(QuadrupedWalk):
    task_name: ClassVar[str] = "run"
    speed: ClassVar[float] = 5.0
