"""Shared machinery of the DeepMind Control Suite tasks (dm_control 1.0.50), batched.

A :class:`DmcTask` is a :class:`~rlwb.envs.mujoco.base.MujocoTask` that loads dm_control's
own model XML from the installed ``dm_control`` package and computes in torch, from the
physics state, what the suite's ``Task`` computes:

* one env step is ``n_sub_steps = control_timestep / model timestep`` MuJoCo steps (set as
  ``frame_skip`` in :meth:`DmcTask.setup`), followed by ``mj_step1`` (``sync_after_step``),
  exactly like dm_control's ``Physics.step`` (its "legacy step": ``mj_step2``, then
  ``mj_step``s, then ``mj_step1``, which is the same arithmetic as ``mj_step``s followed by
  ``mj_step1``), so ``xpos``/``xmat``/``sensordata`` describe the post-step state;
* the observation is dm_control's ``OrderedDict`` flattened in its key order, with
  ``observation_slices[key] = (start, stop)`` naming each key's columns;
* the reward is the suite's formula with :func:`~rlwb.envs.dmc.rewards.tolerance`;
* the discount is always 1 (no suite task here terminates): episodes end only at the
  1000-step limit (``time_limit / control_timestep``), as truncation;
* the initial state follows ``initialize_episode`` with the engine's torch generator (same
  distributions, other draws). Where dm_control simulates during the reset (cheetah's 200
  settling steps, finger's rejection of colliding poses) the task does the same on its own
  CPU ``MjData``, batched over the members being reset. What dm_control changes in the
  *model* per episode (reacher's, finger-turn's and fish's targets) the task keeps in
  ``MjData.userdata`` (the third reset output), and initial actuator states (dog) are the
  fourth; the forward pass after a reset runs with actuation disabled, as dm_control's
  ``after_reset`` (``forward_without_actuation``);
* where dm_control computes with numpy's BLAS or reductions (``v.dot(xmat)``, ``.mean()``)
  the task calls the same numpy routine on CPU tensors (:func:`row_dot_frame`,
  :func:`row_reduce`), so observations and rewards are bit-identical, not just close.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rlwb.envs.mujoco.base import MujocoTask, PhysicsView
from rlwb.errors import BackendUnavailableError, ConfigError

INSTALL_HINT = "pip install rlwb[dmc]  (dm-control==1.0.50)"

# column of each named entry of a row-major 3x3 frame (dm_control's xmat[..., 'zz'] etc.)
XMAT = {a + b: 3 * i + j for i, a in enumerate("xyz") for j, b in enumerate("xyz")}


def suite_xml(filename: str) -> str:
    """Path of a model XML inside the installed ``dm_control.suite`` (the file the suite's
    ``common.read_model`` reads; its ``./common/*.xml`` includes resolve next to it)."""
    try:
        import dm_control.suite as suite
    except ImportError as exc:
        raise BackendUnavailableError(
            f"DeepMind Control Suite tasks need dm_control: {INSTALL_HINT} ({exc})"
        ) from exc
    path = Path(suite.__file__).parent / filename
    if not path.exists():
        raise BackendUnavailableError(f"dm_control has no model {filename!r} at {path}")
    return str(path)


def object_id(model, kind: str, name: str) -> int:  # noqa: ANN001 - mujoco.MjModel
    """Index of a named body/joint/site/geom/sensor, with a clear error when missing."""
    import mujoco

    idx = mujoco.mj_name2id(model, getattr(mujoco.mjtObj, f"mjOBJ_{kind.upper()}"), name)
    if idx < 0:
        raise ValueError(f"dm_control model has no {kind} named {name!r}")
    return int(idx)


def sensor_columns(model, *names: str) -> list[int]:  # noqa: ANN001
    """Columns of ``sensordata`` holding the named sensors, concatenated in order (as
    dm_control's ``named.data.sensordata[[...]]``)."""
    cols: list[int] = []
    for name in names:
        i = object_id(model, "sensor", name)
        start = int(model.sensor_adr[i])
        cols.extend(range(start, start + int(model.sensor_dim[i])))
    return cols


def rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """``U[0, 1)`` float64 drawn on the generator's device (CUDA for the warp backend),
    returned on the CPU, where resets are computed."""
    dev = generator.device
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=dev).cpu()


def randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """``N(0, 1)`` float64 drawn on the generator's device, returned on the CPU."""
    dev = generator.device
    return torch.randn(shape, generator=generator, dtype=torch.float64, device=dev).cpu()


def index_tensor(indices) -> torch.Tensor:  # noqa: ANN001 - a sequence of ints
    """Column indices for :func:`take`, made once in ``bind``."""
    return torch.as_tensor(list(indices), dtype=torch.long)


def take(x: torch.Tensor, index: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``x`` at ``index`` along ``dim`` (a new tensor). ``index_select``, not ``x[:, list]``:
    torch runs the latter's kernel on its intra-op threads from a few thousand elements
    (64 members x 73 joints), which on a busy machine waits milliseconds for a thread."""
    return torch.index_select(x, dim, index.to(x.device))


def row_dot_frame(vector: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """``vector[b] . frame[b].reshape(3, 3)`` for ``[B, 3]`` vectors and ``[B, 9]``
    row-major frames: a world vector in a body's frame, as dm_control writes it
    (``v.dot(xmat.reshape(3, 3))``). numpy evaluates that through BLAS with fused
    multiply-adds, so on the CPU this calls numpy's batched ``matmul`` (the same BLAS
    kernel: bit-identical); elsewhere it is torch's ``bmm``, equal to rounding."""
    frame = frame.reshape(-1, 3, 3)
    if vector.device.type == "cpu":
        v, m = np.ascontiguousarray(vector.numpy()), np.ascontiguousarray(frame.numpy())
        return torch.from_numpy(np.matmul(v[:, None, :], m)[:, 0])
    return torch.bmm(vector[:, None, :], frame)[:, 0]


def row_reduce(x: torch.Tensor, op: str) -> torch.Tensor:
    """``sum``, ``mean`` or ``prod`` of each row of ``[B, n]``, as dm_control's numpy
    reduction of one row: on the CPU numpy's own (its pairwise summation: bit-identical),
    elsewhere torch's (equal to rounding; torch sums in another order)."""
    if x.device.type == "cpu":
        return torch.from_numpy(getattr(np, op)(np.ascontiguousarray(x.numpy()), axis=1))
    return getattr(torch, op)(x, dim=1)


def contact_count(model, data) -> int:  # noqa: ANN001 - mujoco.MjModel, MjData
    """``ncon`` at ``data.qpos`` as ``mj_forward`` would find it, from just the two stages it
    depends on (kinematics, collision): the reset loops' penetration test, several times
    cheaper than a full forward."""
    import mujoco

    mujoco.mj_kinematics(model, data)
    mujoco.mj_collision(model, data)
    return int(data.ncon)


def uniform(generator: torch.Generator, n: int, low, high) -> torch.Tensor:  # noqa: ANN001
    """``U[low, high)`` float64 ``[n, *shape(low)]`` on the CPU (resets run on the CPU)."""
    low = torch.as_tensor(low, dtype=torch.float64)
    high = torch.as_tensor(high, dtype=torch.float64)
    return low + (high - low) * rand(generator, n, *low.shape)


def randomize_limited_and_rotational_joints(
    model,  # noqa: ANN001 - mujoco.MjModel
    qpos: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """dm_control's ``randomizers.randomize_limited_and_rotational_joints`` for ``[n, nq]``
    rows at once: limited hinges/slides uniform in range, free hinges uniform in
    ``[-pi, pi]``, balls uniform on the (limited) sphere, free joints' quaternions from
    ``rand(4)`` normalised (dm_control's choice); free joints' positions untouched."""
    import mujoco

    jt = mujoco.mjtJoint
    qpos = qpos.clone()
    n = qpos.shape[0]
    for j in range(model.njnt):
        kind, adr = int(model.jnt_type[j]), int(model.jnt_qposadr[j])
        limited = bool(model.jnt_limited[j])
        lo, hi = (float(v) for v in model.jnt_range[j])
        if kind in (jt.mjJNT_HINGE, jt.mjJNT_SLIDE) and limited:
            qpos[:, adr] = uniform(generator, n, lo, hi)
        elif kind == jt.mjJNT_HINGE:
            qpos[:, adr] = uniform(generator, n, -math.pi, math.pi)
        elif kind == jt.mjJNT_BALL and limited:
            axis = randn(generator, n, 3)
            axis = axis / torch.linalg.vector_norm(axis, dim=1, keepdim=True)
            half = 0.5 * uniform(generator, n, 0.0, hi)
            quat = torch.cat([torch.cos(half)[:, None], torch.sin(half)[:, None] * axis], 1)
            qpos[:, adr : adr + 4] = quat
        elif kind == jt.mjJNT_BALL:
            quat = randn(generator, n, 4)
            qpos[:, adr : adr + 4] = quat / torch.linalg.vector_norm(quat, dim=1, keepdim=True)
        elif kind == jt.mjJNT_FREE:
            quat = rand(generator, n, 4)
            norm = torch.linalg.vector_norm(quat, dim=1, keepdim=True)
            qpos[:, adr + 3 : adr + 7] = quat / norm
    return qpos


@dataclass
class DmcTask(MujocoTask):
    """Base of the suite's tasks. Subclasses set ``xml_name``, ``time_limit``,
    ``control_timestep`` (None: the model's timestep), ``fields`` and implement
    :meth:`bind` (read ids), :meth:`observation_parts`, :meth:`dm_reward` and
    :meth:`initialize_episode`. The suite's tasks take no constructor arguments; action
    repeat is an engine option (``make_engine(..., action_repeat=k)``)."""

    xml_name: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    task_name: ClassVar[str] = ""
    time_limit: ClassVar[float] = 10.0
    control_timestep: ClassVar[float | None] = None
    max_episode_steps: ClassVar[int | None] = 1000
    sync_after_step: ClassVar[bool] = True
    forward_without_actuation: ClassVar[bool] = True  # dm_control's after_reset
    # MjData.userdata slots for what dm_control changes in the model per episode (targets)
    userdata_slots: ClassVar[int] = 0
    # where those userdata slots go in the model for an image: (kind, name, columns) of the
    # geom/site dm_control moves, e.g. ("geom", "target", (0, 1)) for reacher
    render_targets: ClassVar[tuple[str, str, tuple[int, ...]] | None] = None
    # the camera of pixel observations, as TD-MPC renders each domain (quadruped: 2)
    render_camera_id: ClassVar[int] = 0
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")

    @classmethod
    def argument_names(cls) -> list[str]:
        return []

    def model_path(self) -> str:
        return suite_xml(self.xml_name)

    def load_model(self, path: str):  # noqa: ANN201 - mujoco.MjModel
        """dm_control's XML, with ``userdata_slots`` ``MjData.userdata`` entries added."""
        import mujoco

        if not self.userdata_slots:
            return mujoco.MjModel.from_xml_path(path)
        spec = mujoco.MjSpec.from_file(path)
        spec.nuserdata = self.userdata_slots
        return spec.compile()

    def setup(self, model) -> None:  # noqa: ANN001 - mujoco.MjModel
        import mujoco

        self.mj_model = model
        timestep = float(model.opt.timestep)
        control = self.control_timestep or timestep
        sub_steps = control / timestep
        if abs(sub_steps - round(sub_steps)) > 1e-6:  # dm_control's own check
            raise ConfigError(f"control timestep {control} is not a multiple of {timestep}")
        self.frame_skip = int(round(sub_steps))
        steps = self.time_limit / control
        if abs(steps - self.max_episode_steps) > 1e-6:
            raise ConfigError(f"{self.domain}-{self.task_name}: {steps} steps per episode expected")
        self.bind(model)
        self._scratch = mujoco.MjData(model)
        mujoco.mj_forward(model, self._scratch)
        parts = self.observation_parts(self.view_of(self._scratch))
        start, slices = 0, {}
        for key, value in parts.items():
            slices[key] = (start, start + value.shape[1])
            start += value.shape[1]
        self.observation_slices: dict[str, tuple[int, int]] = slices
        self._obs_dim = start

    def view_of(self, data) -> PhysicsView:  # noqa: ANN001 - mujoco.MjData
        """A one-member view of ``data`` (the task's fields as ``[1, ...]`` tensors)."""
        return {f: torch.from_numpy(np.array(getattr(data, f)))[None] for f in self.fields}

    # ------------------------------------------------------------------ subclass hooks
    def bind(self, model) -> None:  # noqa: ANN001, B027 - optional hook
        """Read ids, sensor columns and constants from the model."""

    def observation_parts(self, view: PhysicsView) -> OrderedDict[str, torch.Tensor]:
        """dm_control's observation dict, each entry ``[B, k]`` float64."""
        raise NotImplementedError

    def dm_reward(self, view: PhysicsView, action: torch.Tensor) -> torch.Tensor:
        """dm_control's ``get_reward`` for every member, ``[B]`` float64."""
        raise NotImplementedError

    def initialize_episode(
        self, qpos: torch.Tensor, qvel: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """dm_control's ``initialize_episode`` from the reset state ``(qpos0, 0)``; by
        default its most common one (walker, hopper): the joint randomiser."""
        return randomize_limited_and_rotational_joints(self.mj_model, qpos, generator), qvel

    # ------------------------------------------------------------------ MujocoTask protocol
    def observation_dim(self, model) -> int:  # noqa: ANN001
        return self._obs_dim

    def observation(self, view: PhysicsView) -> torch.Tensor:
        return torch.cat(list(self.observation_parts(view).values()), dim=1)

    def reward(
        self, pre: PhysicsView, post: PhysicsView, action: torch.Tensor, dt: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.dm_reward(post, action), {}

    def reset_state(
        self, init_qpos: torch.Tensor, init_qvel: torch.Tensor, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        qpos = init_qpos.to("cpu", torch.float64).expand(n, -1).clone()
        qvel = init_qvel.to("cpu", torch.float64).expand(n, -1).clone()
        return self.initialize_episode(qpos, qvel, generator)

    def render_camera(self) -> int:
        return self.render_camera_id

    def place_render_targets(self, model, data) -> None:  # noqa: ANN001 - mujoco structs
        """Put the member's per-episode target (its userdata) where dm_control's model has
        it, in the renderer's own copy of the model, so the image shows it."""
        if self.render_targets is None:
            return
        kind, name, columns = self.render_targets
        where = getattr(model, f"{kind}_pos")[object_id(model, kind, name)]
        where[list(columns)] = data.userdata[: len(columns)]

    # ------------------------------------------------------------------ dm_control interop
    def dm_userdata(self, physics) -> np.ndarray:  # noqa: ANN001 - dm_control Physics
        """The per-episode task state a dm_control ``Physics`` keeps in its model (e.g.
        reacher's target position), as this task stores it in ``MjData.userdata``."""
        return np.zeros(0)

    def state_from_dm_control(self, physics) -> np.ndarray:  # noqa: ANN001
        """The ``mujoco`` backend's physics-state row (``get_state`` without the step
        counter) of a dm_control ``Physics``: time, qpos, qvel, act, solver warm start and
        the task's userdata, so ``engine.set_state`` continues exactly where it is."""
        import mujoco

        from rlwb.engine.mujoco_state import STATE_SPEC

        model, data = self.mj_model, mujoco.MjData(self.mj_model)
        spec = STATE_SPEC & ~int(mujoco.mjtState.mjSTATE_USERDATA)
        row = np.zeros(mujoco.mj_stateSize(physics.model.ptr, spec))
        mujoco.mj_getState(physics.model.ptr, physics.data.ptr, row, spec)
        mujoco.mj_setState(model, data, row, spec)
        data.userdata[:] = self.dm_userdata(physics)
        state = np.zeros(mujoco.mj_stateSize(model, STATE_SPEC))
        mujoco.mj_getState(model, data, state, STATE_SPEC)
        return state

    # ------------------------------------------------------------------ reset helpers
    def contact_free(self, qpos: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool: no contact at each pose (dm_control's ``after_reset`` then
        ``ncon == 0``), checked on the task's CPU ``MjData``."""
        import mujoco

        model, data, ok = self.mj_model, self._scratch, []
        for row in qpos.cpu().numpy():
            mujoco.mj_resetData(model, data)
            data.qpos[:] = row
            ok.append(contact_count(model, data) == 0)
        return torch.tensor(ok, dtype=torch.bool)

    def sample_contact_free(
        self,
        qpos: torch.Tensor,
        draw,
        max_attempts: int = 1000,  # noqa: ANN001 - callable
    ) -> torch.Tensor:
        """Batched rejection loop: ``draw(rows)`` proposes new poses for ``rows``; rows in
        contact are redrawn until all are free (dm_control gives up after 1000 tries)."""
        todo = torch.arange(qpos.shape[0])
        for _ in range(max_attempts):
            qpos[todo] = draw(qpos[todo])
            todo = todo[~self.contact_free(qpos[todo])]
            if len(todo) == 0:
                return qpos
        raise RuntimeError(f"no contact-free pose after {max_attempts} attempts")
