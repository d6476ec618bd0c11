"""The ``warp`` backend: MuJoCo Warp, one ``nworld`` batch per engine, zero-copy with torch.

Why it looks the way it does:

* One ``mujoco_warp.Data`` holds all B members (``nworld = B``). Its arrays are wrapped once
  with ``wp.to_torch`` (no copies, same device memory): actions are written straight into
  ``d.ctrl``, state is read and written through the same views, and resets and
  ``set_state`` are masked/indexed tensor writes over the batch (no Python loop over
  members).
* Warp computes in float32; the task contract (:mod:`rlwb.envs.mujoco.base`) promises
  float64 ``PhysicsView`` tensors, so after each step the fields a task reads are cast into
  float64 buffers on the device (one small kernel per field). The same task code therefore
  runs on both backends; expect float32-level differences from the CPU backend.
* MuJoCo semantics that Gymnasium relies on are mirrored: ``frame_skip`` ``step`` calls per
  env step, ``rne_postconstraint`` after them when the task reads ``cfrc_ext`` (as
  Gymnasium calls ``mj_rnePostConstraint``), and on reset ``reset_data`` + new qpos/qvel +
  ``forward``, with ``cfrc_ext``/``cacc``/``cfrc_int`` zero as after ``mj_resetData``.
  ``forward`` runs on every world (Warp has no per-world forward); that only refreshes
  derived arrays of the other members, never their state (``qacc_warmstart`` is written
  by the integrator only), and their gathered views are kept.
* State layout equals the ``mujoco`` backend's (:mod:`rlwb.engine.mujoco_state`: time,
  qpos, qvel, act, history, qacc_warmstart, ctrl), so a state taken on one backend loads
  on the other.
* The physics of one env step (``frame_skip`` steps plus ``rne_postconstraint``) is
  captured once as a graph and replayed (a CUDA graph on the GPU; on Warp's CPU device a
  recorded launch graph replayed in C++, ~20x faster than Python launches there); an
  open-loop ``rollout`` is captured as one graph per horizon (action copies, physics and
  field recording, see :mod:`rlwb.engine.warp_rollout`), and the task's torch math then
  runs once over the whole ``[H * B]`` batch. Warp's CPU device is for tests and
  debugging (HalfCheetah, 16 worlds, 2 busy cores: ~4k env steps/s with graphs, ~340
  without; the ``mujoco`` backend does 8-16k there); ``backend="auto"`` picks Warp only
  with CUDA.

Limits of MuJoCo Warp 3.17: models using the PGS solver (Gymnasium's Humanoid and
HumanoidStandup) are refused with a clear error; use ``backend="mujoco"`` for them. Its RK4
integrator departs from MuJoCo C's on free joints (Ant-v5: a warning at construction; see
``_warn_rk4_free_joints``). Measured one-step agreement with the CPU backend from the same
state: HalfCheetah, Hopper, Walker2d 1e-5 to 2e-3 (contacts), Swimmer, the pendulums,
Reacher and Pusher 1e-6 or better.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch

from rlwb import tasks
from rlwb.engine import mujoco_state
from rlwb.engine.base import Engine
from rlwb.engine.mujoco_state import STATE_SPEC, actuation_disabled
from rlwb.engine.warp_rollout import batched_open_loop
from rlwb.envs.mujoco.base import KNOWN_FIELDS, RNE_POST_FIELDS, MujocoTask, load_model
from rlwb.errors import BackendUnavailableError, ConfigError

NO_CUDA = "no CUDA device; use device='cpu' to run Warp on the CPU (slow)"
# An open-loop rollout records the task's fields for every step; above this many bytes it
# falls back to the step-by-step loop instead of recording the whole horizon at once.
ROLLOUT_RECORD_BYTES = 2 * 1024**3


def _import_warp() -> tuple[Any, Any]:
    """``(warp, mujoco_warp)``, imported on first use, with Warp's start-up banner off."""
    import warp as wp

    if getattr(wp.config, "log_level", None) == getattr(wp, "LOG_INFO", 20):
        wp.config.log_level = wp.LOG_WARNING  # no banner, no per-module load lines
    import mujoco_warp as mjw

    return wp, mjw


def _warp_import_error() -> str | None:
    try:
        _import_warp()
    except ImportError as exc:
        return f"mujoco_warp not installed ({exc}); pip install 'rlwb[gpu]'"
    return None


def _warn_rk4_free_joints(task: str, model: mujoco.MjModel) -> None:
    """MuJoCo Warp 3.17's RK4 does not reproduce MuJoCo C's for free/ball joints: one
    Ant-v5 env step from the same state differs by ~0.4 rad/s in the root's angular
    velocity (Euler matches to 3e-6; RK4 models without free joints, Hopper and Walker2d,
    match to 1e-4)."""
    rotating = (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_BALL))
    if (
        model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
        and np.isin(model.jnt_type, rotating).any()
    ):
        warnings.warn(
            f"{task}: MuJoCo Warp's RK4 integrator differs from MuJoCo C's for free joints; "
            "trajectories will not match Gymnasium's (use backend='mujoco' for parity)",
            stacklevel=4,
        )


class _GraphSlot:
    """One captured graph (None until captured) and how often its work has run."""

    graph: Any = None
    calls: int = 0


class WarpEngine(Engine):
    """Batched MuJoCo Warp: B members are the B worlds of one ``mujoco_warp.Data``.

    Backend options (every other keyword goes to the task): ``nconmax`` / ``njmax``
    (contacts and constraint rows per world; MuJoCo Warp's defaults when None) and
    ``graph`` (capture a step's physics and whole open-loop rollouts once and replay them:
    CUDA graphs on the GPU, Warp's recorded launch graphs on the CPU, where they cut the
    Python launch overhead that dominates, ~20x per step; False runs every launch eagerly).
    """

    backend = "warp"

    @classmethod
    def render_refusal(cls) -> str:
        return (
            "pixel observations need backend='mujoco' (MuJoCo Warp 3.17's batched renderer "
            "ray-traces its own images, not the OpenGL frames of dm_control or Gymnasium)"
        )

    @classmethod
    def available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        """With CUDA, or on ``device='cpu'`` when asked for explicitly (slow, for tests)."""
        error = _warp_import_error()
        if error is not None:
            return False, error
        if device is not None and device.type == "cpu":
            return True, ""
        if device is not None and device.type != "cuda":
            return False, f"Warp runs on CUDA or the CPU, not {device}"
        if not torch.cuda.is_available():
            return False, NO_CUDA
        wp, _ = _import_warp()
        if not wp.is_cuda_available():
            return False, "torch sees CUDA but Warp does not (driver too old for Warp?)"
        return True, ""

    @classmethod
    def auto_available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        """``backend="auto"`` picks Warp only with CUDA: on the CPU the ``mujoco`` backend
        is much faster."""
        if device is not None and device.type == "cpu":
            return False, "auto picks warp only on CUDA; pass backend='warp' to use the CPU"
        return cls.available(device)

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        nconmax: int | None = None,
        njmax: int | None = None,
        graph: bool = True,
        definition: MujocoTask | None = None,
        **task_kwargs: Any,
    ) -> None:
        wp, mjw = _import_warp()
        self._wp, self._mjw = wp, mjw
        dev = self._resolve_device(device)
        self.wp_device = wp.get_device("cpu") if dev.type == "cpu" else wp.device_from_torch(dev)
        if definition is None:
            definition = tasks.build_task(task, task_kwargs, ["nconmax", "njmax", "graph"])
        self.task, self.model = definition, load_model(task, definition)
        self.task_id, self.num_envs, self.device, self.dtype = task, int(num_envs), dev, dtype
        self.frame_skip = int(self.task.frame_skip)
        self.dt = float(self.model.opt.timestep * self.frame_skip)
        self.max_episode_steps = self.task.max_episode_steps
        self._rne = self.task.needs_rne_post
        self._sync = self.task.sync_after_step  # dm_control tasks: mj_step1 after stepping
        for name, value in (("nconmax", nconmax), ("njmax", njmax)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

        with wp.ScopedDevice(self.wp_device):
            try:
                self.m = mjw.put_model(self.model)
            except NotImplementedError as exc:
                raise BackendUnavailableError(
                    f"MuJoCo Warp cannot simulate {task!r}: {exc}; use backend='mujoco'"
                ) from exc
            _warn_rk4_free_joints(task, self.model)
            self.d = mjw.put_data(
                self.model,
                mujoco.MjData(self.model),
                nworld=self.num_envs,
                nconmax=nconmax,
                njmax=njmax,
            )
        self._wrap_arrays()
        self.init_qpos = torch.as_tensor(self.model.qpos0, dtype=torch.float64, device=dev)
        self.init_qvel = torch.zeros(self.model.nv, dtype=torch.float64, device=dev)

        self._graphs_enabled = bool(graph)
        self._capture_stream: Any = None
        self._step_slot = _GraphSlot()
        self._rollout_graphs: dict[int, Any] = {}  # horizon -> RolloutBuffers

        obs_dim = self.task.observation_dim(self.model)
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np_dtype)
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.single_action_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self._init_bookkeeping(seed)

    @staticmethod
    def _resolve_device(device: str | torch.device | None) -> torch.device:
        if device is None:
            if not torch.cuda.is_available():
                raise BackendUnavailableError(f"backend 'warp' is unavailable here: {NO_CUDA}")
            return torch.device("cuda", torch.cuda.current_device())
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.type not in ("cpu", "cuda"):
            raise ConfigError(f"the warp backend runs on CUDA or the CPU, not {dev}")
        return dev

    def _wrap_arrays(self) -> None:
        """Torch views of the Data arrays we touch, and float64 buffers for the task."""
        wp, m = self._wp, self.model
        names = list(dict.fromkeys(self.task.fields + self.task.pre_fields))
        unknown = [n for n in names if n not in KNOWN_FIELDS]
        if unknown:
            raise ValueError(f"task {self.task_id!r} asks for unknown MjData fields {unknown}")
        # [time | qpos | qvel | act | history | qacc_warmstart | ctrl], mj_getState's order.
        parts = [("time", 1), ("qpos", m.nq), ("qvel", m.nv), ("act", m.na)]
        parts += [("history", int(getattr(m, "nhistory", 0))), ("qacc_warmstart", m.nv)]
        parts += [("ctrl", m.nu)]
        parts += [("userdata", m.nuserdata)]  # per-episode task state (dm_control tasks)
        self._state_parts = [(n, size) for n, size in parts if size > 0]
        self.state_size = sum(size for _, size in self._state_parts)
        expected = mujoco.mj_stateSize(m, STATE_SPEC)
        if self.state_size != expected:
            raise BackendUnavailableError(
                f"task {self.task_id!r}: its model has state MuJoCo Warp does not expose "
                f"(plugins?); state size {self.state_size} != mj_stateSize {expected}"
            )
        wrapped = names + [n for n, _ in self._state_parts]
        self._t = {n: wp.to_torch(getattr(self.d, n)) for n in dict.fromkeys(wrapped)}
        for n in ("xmat", "site_xmat", "geom_xmat"):  # Warp mat33 -> MjData [.., 9]
            if n in self._t:
                self._t[n] = self._t[n].flatten(-2)
        self.view = {
            n: torch.zeros(self._t[n].shape, dtype=torch.float64, device=self.device) for n in names
        }
        self._rne_names = [n for n in names if n in RNE_POST_FIELDS]

    def _generator_device(self) -> torch.device:
        """Reset noise is drawn where the physics lives (no host round-trip on CUDA)."""
        return self.device

    # ------------------------------------------------------------------ warp plumbing
    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """Launch Warp work on our device and, on CUDA, on torch's current stream, so Warp
        kernels and torch ops on the same tensors are ordered without synchronization."""
        wp = self._wp
        if self.device.type == "cuda":
            with wp.ScopedStream(wp.stream_from_torch(torch.cuda.current_stream(self.device))):
                yield
        else:
            with wp.ScopedDevice(self.wp_device):
                yield

    def _physics(self) -> None:
        """One env step of physics: ``frame_skip`` MuJoCo steps (+ rne_postconstraint)."""
        mjw, m, d = self._mjw, self.m, self.d
        for _ in range(self.frame_skip):
            mjw.step(m, d)
        if self._sync:  # MuJoCo C's mj_step1, which (unlike mjw.step1) keeps acc sensors
            mjw.fwd_position(m, d)
            mjw.sensor_pos(m, d)
            mjw.fwd_velocity(m, d)
            mjw.sensor_vel(m, d)
        if self._rne:
            mjw.rne_postconstraint(m, d)

    def _capture(self, fn: Any) -> Any:
        """A graph of the Warp work in ``fn``, or None if Warp refuses to capture it.

        On CUDA the capture runs on a side stream of ours: torch's default stream is the
        legacy NULL stream, which CUDA cannot capture. Capturing executes nothing, and the
        graph is later launched on torch's current stream, so ordering with torch holds.
        """
        wp = self._wp
        try:
            if self.device.type == "cuda":
                if self._capture_stream is None:
                    self._capture_stream = wp.Stream(self.wp_device)
                stream = self._capture_stream
                with (
                    wp.ScopedStream(stream),
                    wp.ScopedCapture(device=self.wp_device, stream=stream) as cap,
                ):
                    fn()
            else:
                with (
                    wp.ScopedDevice(self.wp_device),
                    wp.ScopedCapture(device=self.wp_device) as cap,
                ):
                    fn()
        except Exception as exc:  # noqa: BLE001 - any capture failure: run eagerly instead
            warnings.warn(
                f"warp backend: graph capture failed ({exc}); running eagerly", stacklevel=3
            )
            self._graphs_enabled = False
            return None
        return cap.graph

    def _replay(self, slot: Any, fn: Any) -> None:
        """Run ``fn`` (Warp work only) through ``slot``'s graph. The first call runs eagerly:
        it compiles and loads the kernels, which a capture should not do, and a one-off
        rollout then costs no capture. The second call captures; later calls replay."""
        wp = self._wp
        if slot.graph is None and self._graphs_enabled and slot.calls >= 1:
            slot.graph = self._capture(fn)
        with self._scope():
            if slot.graph is not None:
                stream = wp.get_stream(self.wp_device) if self.device.type == "cuda" else None
                wp.capture_launch(slot.graph, stream=stream)
            else:
                fn()
        slot.calls += 1

    def _run_physics(self) -> None:
        """One env step of physics, replayed from a graph after the first call."""
        self._replay(self._step_slot, self._physics)

    def _forward_all(self) -> None:
        """``forward`` (+ rne_postconstraint) on every world after their state was written."""
        with self._scope():
            self._mjw.forward(self.m, self.d)
            if self._rne:
                self._mjw.rne_postconstraint(self.m, self.d)

    def _gather(self, members: torch.Tensor | None) -> None:
        """Cast the task's fields into the float64 view (all members or some)."""
        for name, buf in self.view.items():
            if members is None:
                buf.copy_(self._t[name])
            else:
                buf[members] = self._t[name][members].to(torch.float64)

    def _members_view(self, members: torch.Tensor) -> dict[str, torch.Tensor]:
        if len(members) == self.num_envs and torch.equal(members, self._all_members):
            return self.view
        return {n: v[members] for n, v in self.view.items()}

    def _mask(self, members: torch.Tensor) -> Any:
        """A Warp bool array marking ``members``. Always a mask, even for every member:
        ``reset_data`` compiles separate kernels for "no mask", so one variant compiles
        once."""
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        mask[members] = True
        return self._wp.from_torch(mask, dtype=self._wp.bool)

    # ------------------------------------------------------------------ primitives
    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        drawn = self.task.reset_state(self.init_qpos, self.init_qvel, len(members), self.generator)
        qpos, qvel = drawn[0], drawn[1]
        mask = self._mask(members)
        with self._scope():
            self._mjw.reset_data(self.m, self.d, reset=mask)
        t = self._t
        t["qpos"][members] = qpos.to(device=self.device, dtype=t["qpos"].dtype)
        t["qvel"][members] = qvel.to(device=self.device, dtype=t["qvel"].dtype)
        if len(drawn) > 2 and drawn[2].shape[-1]:  # per-episode task state (dm_control tasks)
            t["userdata"][members] = drawn[2].to(device=self.device, dtype=t["userdata"].dtype)
        if len(drawn) > 3:  # initial actuator states
            t["act"][members] = drawn[3].to(device=self.device, dtype=t["act"].dtype)
        with self._scope(), actuation_disabled(self.m.opt, self.task.forward_without_actuation):
            self._mjw.forward(self.m, self.d)
        self._gather(members)
        for name in self._rne_names:  # mj_resetData zeroes them and mj_forward leaves them
            self.view[name][members] = 0.0
        return self.task.observation(self._members_view(members)).to(self.dtype, copy=True)

    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        pre = {n: self.view[n].clone() for n in self.task.pre_fields}
        self._t["ctrl"].copy_(action)
        self._run_physics()
        self._gather(None)
        action64 = action.to(torch.float64)
        obs, reward, terminated, info = self.task.evaluate(pre, self.view, action64, self.task_dt)
        dtype = self.dtype
        info = {k: v.to(dtype, copy=True) for k, v in info.items()}
        return obs.to(dtype, copy=True), reward.to(dtype, copy=True), terminated.clone(), info

    def _get_physics_state(self) -> torch.Tensor:
        parts = [self._t[n].reshape(self.num_envs, -1) for n, _ in self._state_parts]
        return torch.cat([p.to(torch.float64) for p in parts], dim=1)

    def _physics_state_size(self) -> int:
        return self.state_size

    def _convert_state(self, state: torch.Tensor) -> torch.Tensor | None:
        return mujoco_state.convert_state(self.model, state)

    def _snapshot(self) -> Any:
        state = {n: self._t[n].clone() for n, _ in self._state_parts}
        view = {n: v.clone() for n, v in self.view.items()}
        return state, view, self._counters()

    def _restore(self, snapshot: Any) -> None:
        state, view, counters = snapshot
        for name, value in state.items():
            self._t[name].copy_(value)
        for name, value in view.items():
            self.view[name].copy_(value)
        self._restore_counters(counters)

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        if state.shape[1] != self.state_size:
            raise ValueError(
                f"physics state must have {self.state_size} entries, got {state.shape[1]}"
            )
        state = state.to(self.device)
        start = 0
        for name, size in self._state_parts:
            target = self._t[name]
            values = state[:, start : start + size].to(target.dtype)
            target[members] = values.reshape(len(members), *target.shape[1:])
            start += size
        with actuation_disabled(self.m.opt, self.task.forward_without_actuation):
            self._forward_all()
        self._gather(members)
        return self.task.observation(self._members_view(members)).to(self.dtype, copy=True)

    # ------------------------------------------------------------------ rollout
    def _rollout_fast(
        self, actions: torch.Tensor, horizon: int, obs: torch.Tensor
    ) -> tuple[Any, ...] | None:
        """Open loop: run all H steps of physics first (one graph), then the task's math
        once over ``[H * B]``; None (the stepping loop) when the records would not fit."""
        fields = list(self.view)
        per_step = sum(self.view[n][0].numel() for n in fields) + self.action_dim
        if horizon == 0 or per_step * 4 * horizon * self.num_envs > ROLLOUT_RECORD_BYTES:
            return None
        return batched_open_loop(self, actions)

    def close(self) -> None:
        self._step_slot = _GraphSlot()
        self._rollout_graphs = {}
        for name in ("d", "m", "_t"):
            if hasattr(self, name):
                delattr(self, name)
