"""The engine contract: a batch of B environment members, torch tensors in and out.

Backends implement five primitives (``_reset_members``, ``_step_members``,
``_get_physics_state``, ``_set_physics_state``, ``close``); this base class turns them into
the public API with Gymnasium 1.x semantics so every backend behaves the same:

* ``step`` autoresets finished members in the same call (Gymnasium's ``SAME_STEP`` mode,
  which Stable-Baselines3 also uses): the returned observation of a finished member is the
  first observation of its next episode and ``info["final_obs"]`` holds the last one.
* time limits are the engine's job (``truncated``), never the task's.
* ``get_state``/``set_state`` move full per-member state (physics plus the elapsed-step
  counter), so one real state can be cloned into N members for planning.
* ``rollout`` runs a whole horizon, open loop (``actions[N, H, A]``) or closed loop (a
  batched policy), without autoreset: after a member terminates, its rewards are zero and
  ``alive`` is False (the rules live in :mod:`rlwb.engine.rollout`). A rollout is a query:
  afterwards the engine is exactly as before the call, so ``step`` continues the episode
  that was running.
* engine options, the same on every backend (``make_engine`` keywords):
  ``max_episode_steps`` overrides the task's time limit and ``action_repeat=k`` makes one
  engine step ``k`` task steps with the same action (rewards summed, stopping at
  termination). Time limits count *engine* steps; by default a task's limit of L task
  steps becomes ``ceil(L / k)`` engine steps (the same simulated time), and
  ``spec.action_repeat`` tells a runner that wants to count task-level env steps (as the
  DMC/TD-MPC papers do) to multiply engine steps by ``k``. ``observation="pixels"`` (or
  ``"both"``, with ``image_size``, ``frame_stack``, ``camera``) makes observations uint8
  frame stacks ``[B, 3k, H, W]`` rendered once per engine step (:mod:`rlwb.engine.pixels`);
  backends render (``_render_members``) and this class keeps the stacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlwb.engine.pixels import FrameStack, PixelOptions, image_space, with_pixels
from rlwb.engine.rollout import (
    RolloutResult,
    StepOut,
    assemble,
    collapse_repeats,
    repeat_step,
    still_alive,
)
from rlwb.errors import ActionError, ConfigError

Policy = Callable[[torch.Tensor], torch.Tensor]
_NUMPY_FLOATS = (torch.float32, torch.float64)  # rewards the host bookkeeping reads
SMALL_ACTION = 256  # up to this many entries the finite test sums a Python list (~0.2 us)
LIVE_STEPPING_SHARE = 4 / 3  # rollouts step a subset once under 3/4 of the members run


@dataclass(frozen=True)
class EngineSpec:
    """What an agent needs to know about an engine to build its networks, and what
    ``make_engine`` needs to rebuild it (``backend``, ``task_kwargs``, ``action_repeat``;
    ``max_episode_steps`` is in engine steps). ``state_dim`` is the length of a
    ``get_state`` row (0 where the backend cannot read states). ``observation_slices``
    names parts of the flat observation, ``name -> (start, stop)`` (goal tasks:
    ``observation``, ``achieved_goal``, ``desired_goal``), from the task's
    ``observation_slices`` attribute; empty for a plain vector. ``observation_dtype`` is
    the observations' dtype: the engine's float dtype for state vectors, ``torch.uint8``
    for images ``[C, H, W]`` (``observation="pixels"``, see :mod:`rlwb.engine.pixels`; Atari
    frames). ``num_actions`` is 0 for continuous actions; n > 0 means discrete actions, an
    integer ``[B]`` or ``[B, 1]`` tensor of values in ``[0, n)`` (``action_dim`` 1)."""

    task_id: str
    num_envs: int
    observation_shape: tuple[int, ...]
    action_dim: int
    action_low: torch.Tensor
    action_high: torch.Tensor
    max_episode_steps: int | None
    dt: float
    device: torch.device
    backend: str = ""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    state_dim: int = 0
    observation_slices: dict[str, tuple[int, int]] = field(default_factory=dict)
    action_repeat: int = 1
    observation_dtype: torch.dtype = torch.float32
    num_actions: int = 0


def _slices_of(task: Any) -> dict[str, tuple[int, int]]:
    """``name -> (start, stop)`` from a task's ``observation_slices`` (or the torch tasks'
    older ``obs_slices``), slices or pairs; empty when it has none."""
    named = getattr(task, "observation_slices", None) or getattr(task, "obs_slices", None)
    out = {}
    for name, part in (named or {}).items():
        if isinstance(part, slice):
            part = (part.start or 0, part.stop)
        out[str(name)] = (int(part[0]), int(part[1]))
    return out


def _cpu(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.cpu()


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    return value


class Engine(ABC):
    """A batch of ``num_envs`` members of one task on one backend.

    Subclasses set ``task_id``, ``num_envs``, ``device``, ``dtype``,
    ``single_observation_space``, ``single_action_space``, ``max_episode_steps`` and ``dt``
    in ``__init__`` and then call ``_init_bookkeeping()``.
    """

    backend: str = "?"
    task_id: str
    num_envs: int
    device: torch.device
    dtype: torch.dtype
    single_observation_space: gym.spaces.Box
    single_action_space: gym.spaces.Box
    max_episode_steps: int | None
    dt: float  # seconds of simulated time per engine step (task_dt * action_repeat)
    action_repeat: int = 1
    # Rollouts step only the members still running once fewer than 3/4 of them are (on
    # backends that implement ``_step_some``); False steps every member to the end.
    step_live_only: bool = True
    _steps_subsets: bool = False  # the backend implements ``_step_some``
    _pixels: FrameStack | None = None  # frame stacks when observations are images

    @classmethod
    def available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        """Whether this backend can run here on ``device``, and why not."""
        return True, ""

    @classmethod
    def auto_available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        """Whether ``backend="auto"`` may pick this backend on ``device`` (a backend that
        runs but is slow somewhere, e.g. Warp on the CPU, says no here)."""
        return cls.available(device)

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        """Reset the members in the int64 index tensor ``members``; return their obs."""

    @abstractmethod
    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance all members one env step: (obs, reward, terminated, reward_components)."""

    @abstractmethod
    def _get_physics_state(self) -> torch.Tensor:
        """Full physics state, float64 ``[B, S]``."""

    @abstractmethod
    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """Load ``state[k]`` into member ``members[k]``; return those members' obs."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads, processes or device memory."""

    @classmethod
    def render_refusal(cls) -> str:
        """Why this backend cannot render pixel observations ("" when it can)."""
        return (
            f"backend {cls.backend!r} cannot render; pixel observations need backend='mujoco' "
            "(or 'gym' for Gymnasium's MuJoCo and dm_control envs)"
        )

    def _setup_rendering(self, options: PixelOptions) -> None:
        """Prepare rendering (renderers, camera, buffers) for ``options``."""
        raise ConfigError(self.render_refusal())

    def _render_members(self, members: torch.Tensor) -> torch.Tensor:
        """The current frame of ``members`` (int64 ``[K]``): uint8 ``[K, 3, H, W]``."""
        raise NotImplementedError

    def _physics_state_size(self) -> int | None:
        """Columns of ``_get_physics_state`` without reading it (None: unknown)."""
        return None

    def _convert_state(self, state: torch.Tensor) -> torch.Tensor | None:
        """A state row in another layout the backend accepts (e.g. MuJoCo's
        ``mj_getState(FULLPHYSICS)``) as the engine's full layout, or None."""
        return None

    # ------------------------------------------------------------------ bookkeeping
    def _init_bookkeeping(self, seed: int | None) -> None:
        b, dev = self.num_envs, self.device
        self.generator = torch.Generator(device=self._generator_device())
        self.generator.manual_seed(
            int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        )
        self.elapsed = torch.zeros(b, dtype=torch.int64, device=dev)
        self.episode_return = torch.zeros(b, dtype=torch.float64, device=dev)
        self.episode_length = torch.zeros(b, dtype=torch.int64, device=dev)
        self._all_members = torch.arange(b, device=dev)
        self.task_dt = float(self.dt)  # seconds per task step; dt is per engine step
        self._obs: torch.Tensor | None = None
        low = torch.as_tensor(self.single_action_space.low, dtype=self.dtype, device=dev)
        high = torch.as_tensor(self.single_action_space.high, dtype=self.dtype, device=dev)
        self.spec = EngineSpec(
            task_id=self.task_id,
            num_envs=b,
            observation_shape=tuple(self.single_observation_space.shape),
            action_dim=int(np.prod(self.single_action_space.shape)),
            action_low=low,
            action_high=high,
            max_episode_steps=self.max_episode_steps,
            dt=float(self.dt),
            device=dev,
            state_dim=(size + 1) if (size := self._physics_state_size()) is not None else 0,
            observation_slices=_slices_of(getattr(self, "task", None)),
        )

    def _configure(
        self,
        max_episode_steps: int | None = None,
        action_repeat: int = 1,
        pixels: PixelOptions | None = None,
    ) -> None:
        """Apply the engine options (see the module docstring) once, after construction:
        the one implementation of time limits, action repeat and pixel observations for
        every backend."""
        k = _positive_int("action_repeat", action_repeat)
        if pixels is not None:
            self._setup_rendering(pixels)
            self._pixels = FrameStack(pixels, self.num_envs, self.device)
            self.state_observation_space = self.single_observation_space
            self.single_observation_space = image_space(pixels)
            self.spec = with_pixels(self.spec, pixels)
        if max_episode_steps is not None:
            limit: int | None = _positive_int("max_episode_steps", max_episode_steps)
        elif self.max_episode_steps is not None:
            limit = -(-int(self.max_episode_steps) // k)
        else:
            limit = None
        self.action_repeat, self.max_episode_steps = k, limit
        self.dt = self.task_dt * k
        self.spec = dataclasses.replace(
            self.spec, max_episode_steps=limit, dt=self.dt, action_repeat=k
        )

    def _advance(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One engine step of every member: ``action_repeat`` task steps."""
        if self.action_repeat == 1:
            out = self._step_members(action)
        else:
            out = repeat_step(self._step_members, action, self.action_repeat)
        return out if self._pixels is None else self._stepped_frames(out, None)

    def _stepped_frames(self, out: StepOut, members: torch.Tensor | None) -> StepOut:
        """A step's outputs with the pixel observation: ``members`` (None: all) rendered
        and pushed onto their stacks; with ``observation="both"`` the state observation
        goes to ``info["state"]``."""
        pixels = self._pixels
        state_obs, reward, term, info = out
        if pixels.with_state:
            info = {**info, "state": state_obs}
            pixels.set_state(state_obs, members)
        frames = self._render_members(self._all_members if members is None else members)
        return pixels.push(frames, members), reward, term, info

    def _first_frames(self, state_obs: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """The observation of ``members`` just reset or loaded: their state observation,
        or with pixels a fresh stack of their current frame (see :mod:`rlwb.engine.pixels`)."""
        pixels = self._pixels
        if pixels is None:
            return state_obs
        index = None if members is self._all_members else members
        pixels.set_state(state_obs, index)
        return pixels.fill(self._render_members(members), index)

    @property
    def state_obs(self) -> torch.Tensor | None:
        """The members' current state observations with ``observation="both"`` (None before
        the first reset)."""
        if self._pixels is None or not self._pixels.with_state:
            raise AttributeError("state_obs is kept with observation='both' only")
        return self._pixels.state

    def _step_some(
        self, action: torch.Tensor, members: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance only ``members`` (int64 ``[K]``) one task step with ``action[K, A]`` and
        return their ``(obs, reward, terminated, info)`` rows; the other members may be
        left anywhere (rollouts restore the engine). Backends that implement it set
        ``_steps_subsets``."""
        raise NotImplementedError

    def _advance_live(
        self, action: torch.Tensor, members: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One engine step of the live ``members`` only, as full ``[N]`` rows: ended
        members keep ``obs`` and get zero reward, info and termination (the rollout rules
        never read those rows: rewards and info are zero after the end, observations
        frozen at the last alive step)."""
        action = action[members]

        def step_once(act: torch.Tensor) -> Any:
            return self._step_some(act, members)

        if self.action_repeat == 1:
            part = step_once(action)
        else:
            part = repeat_step(step_once, action, self.action_repeat)
        if self._pixels is not None:
            part = self._stepped_frames(part, members)
        return self._widen(part, members, obs)

    def _widen(
        self, part: tuple[Any, ...], members: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``members``' step outputs as full ``[N]`` rows (see :meth:`_advance_live`)."""
        o, r, t, i = part
        n = self.num_envs
        full_obs = obs.index_put((members,), o)
        reward = r.new_zeros(n).index_put((members,), r)
        term = t.new_zeros(n).index_put((members,), t)
        info = {k: v.new_zeros((n, *v.shape[1:])).index_put((members,), v) for k, v in i.items()}
        return full_obs, reward, term, info

    def _generator_device(self) -> torch.device:
        """Device of the engine's random generator (CPU unless the backend samples on GPU)."""
        return torch.device("cpu")

    @property
    def action_dim(self) -> int:
        return self.spec.action_dim

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.spec.observation_shape

    # ------------------------------------------------------------------ public API
    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every member; with ``seed``, reseed the engine's generator first."""
        if seed is not None:
            self.seed(seed)
        self.elapsed.zero_()
        self.episode_return.zero_()
        self.episode_length.zero_()
        self._obs = self._first_frames(self._reset_members(self._all_members), self._all_members)
        return self._obs

    def step(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One env step for every member, with same-step autoreset.

        Returns ``obs, reward, terminated, truncated, info``. ``info`` holds the reward
        components (``[B]`` tensors), ``final_obs`` (``[B, ...]``; rows valid where
        ``terminated | truncated``), ``episode_return`` and ``episode_length`` (valid on
        the same rows) and ``done`` (the mask).
        """
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        action = self.check_action(action, (self.num_envs, self.action_dim))
        obs, reward, terminated, info = self._advance(action)
        info["done"] = None  # keys in the order callers have always seen
        info["final_obs"] = obs
        both = self._pixels is not None and self._pixels.with_state
        if both:
            info["final_state"] = info["state"]
        host = self._host_arrays(reward, terminated)
        if host is not None:
            truncated, done, members = self._count_on_host(*host, info)
        else:
            truncated, done, members = self._count_on_device(reward, terminated, info)
        info["done"] = done
        if members is not None:
            if len(members) == self.num_envs:  # every member ended (always so for one)
                obs = self._first_frames(self._reset_members(members), members)
            else:
                obs = obs.clone()
                obs[members] = self._first_frames(self._reset_members(members), members)
            if both:
                info["state"] = self._pixels.state
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def _count_on_device(
        self, reward: torch.Tensor, terminated: torch.Tensor, info: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The per-step bookkeeping in torch ops (any device): ``(truncated, done, members
        to autoreset or None)``; fills ``info``'s episode statistics."""
        self.elapsed += 1
        self.episode_return += reward.to(torch.float64)
        self.episode_length += 1
        if self.max_episode_steps is not None:
            truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        else:
            truncated = torch.zeros_like(terminated)
        done = terminated | truncated
        info["episode_return"] = self.episode_return.clone()
        info["episode_length"] = self.episode_length.clone()
        if not bool(done.any()):
            return truncated, done, None
        members = done.nonzero().squeeze(1)
        self.elapsed[members] = 0
        self.episode_return[members] = 0.0
        self.episode_length[members] = 0
        return truncated, done, members

    def _host_counters(self) -> tuple[np.ndarray, ...]:
        """numpy views of the counter tensors (and a ``[B]`` int64 array of ones), cached
        while the tensors stay the same objects (``Tensor.numpy()`` costs microseconds)."""
        cached = getattr(self, "_host_views", None)
        if (
            cached is None
            or cached[0] is not self.elapsed
            or cached[1] is not self.episode_return
            or cached[2] is not self.episode_length
        ):
            tensors = (self.elapsed, self.episode_return, self.episode_length)
            ones = np.ones(self.num_envs, dtype=np.int64)
            cached = self._host_views = (*tensors, *(x.numpy() for x in tensors), ones)
        return cached[3:]

    def _host_arrays(
        self, reward: torch.Tensor, terminated: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """numpy views of a step's reward and termination when the bookkeeping can run on
        the host (CPU, float, no autograd), else None. Backends that computed them in numpy
        hand back those arrays: ``Tensor.numpy()`` costs ~2 us in a loop."""
        if self.device.type == "cpu" and reward.dtype in _NUMPY_FLOATS and not reward.requires_grad:
            return reward.numpy(), terminated.numpy()
        return None

    def _count_on_host(
        self, reward_np: np.ndarray, term: np.ndarray, info: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`_count_on_device` in numpy on the CPU tensors' memory (``reward_np``,
        ``term``: :meth:`_host_arrays`): the same integer and float64 arithmetic
        (bit-identical), without ~15 torch dispatches per step, which cost as much as the
        physics of one small member."""
        elapsed, ret, length, one = self._host_counters()
        if len(term) == 1:
            return self._count_one(reward_np, term, info, elapsed, ret, length)
        np.add(elapsed, one, out=elapsed)  # (ufuncs with out= and an array operand: the
        np.add(ret, reward_np, out=ret)  # fastest spelling; float32 rewards widen
        np.add(length, one, out=length)  # exactly, as reward.to(float64))
        if self.max_episode_steps is not None:
            trunc = np.greater(elapsed >= self.max_episode_steps, term)  # limit & ~term
        else:
            trunc = np.zeros(term.shape, dtype=bool)
        done = term | trunc
        info["episode_return"] = torch.from_numpy(ret.copy())
        info["episode_length"] = torch.from_numpy(length.copy())
        if not np.count_nonzero(done):  # faster than done.any() on small arrays
            return torch.from_numpy(trunc), torch.from_numpy(done), None
        rows = np.flatnonzero(done)
        elapsed[rows] = 0
        ret[rows] = 0.0
        length[rows] = 0
        return torch.from_numpy(trunc), torch.from_numpy(done), torch.from_numpy(rows)

    def get_state(self) -> torch.Tensor:
        """Full state of every member, float64 ``[B, S]``: physics, then elapsed steps."""
        physics = self._get_physics_state().to(torch.float64)
        return torch.cat([physics, self.elapsed.to(physics)[:, None]], dim=1)

    @property
    def state_dim(self) -> int:
        return self.spec.state_dim or int(self.get_state().shape[1])

    def set_state(self, state: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Load states into members (all by default; a single ``[S]`` state is broadcast).

        Returns the observation of every member after loading. MuJoCo backends also accept
        MuJoCo's own ``mj_getState(mjSTATE_FULLPHYSICS)`` rows (warm start and control
        zero, elapsed 0); see :mod:`rlwb.engine.mujoco_state` for building states from
        an ``MjData``.
        """
        state = torch.as_tensor(state, dtype=torch.float64, device=self.device)
        members = self._all_members if members is None else self._member_index(members)
        if state.ndim == 1:
            state = state.expand(len(members), -1)
        expected = self.state_dim
        if state.ndim == 2 and state.shape[1] != expected:
            converted = self._convert_state(state)
            state = state if converted is None else converted
        if state.ndim != 2 or state.shape != (len(members), expected):
            raise ValueError(
                f"state must have shape ({len(members)}, {expected}) or ({expected},), "
                f"got {tuple(state.shape)}"
            )
        member_obs = self._first_frames(self._set_physics_state(state[:, :-1], members), members)
        self.elapsed[members] = state[:, -1].round().to(torch.int64)
        self.episode_return[members] = 0.0
        self.episode_length[members] = 0
        if members is self._all_members:
            self._obs = member_obs
        else:
            if self._obs is None:
                dtype = self.spec.observation_dtype if self._pixels is not None else self.dtype
                self._obs = torch.zeros(
                    (self.num_envs, *self.observation_shape), dtype=dtype, device=self.device
                )
            self._obs = self._obs.index_put((members,), member_obs)
        return self._obs

    def _member_index(self, members: Any) -> torch.Tensor:
        """Member indices as int64 ``[K]``; a bool ``[B]`` mask selects its True rows."""
        members = torch.as_tensor(members, device=self.device)
        if members.dtype == torch.bool:
            if members.shape != (self.num_envs,):
                raise ValueError(
                    f"a bool member mask must have shape ({self.num_envs},), "
                    f"got {tuple(members.shape)}"
                )
            return members.nonzero().squeeze(1)
        if members.dtype.is_floating_point or members.dtype.is_complex:
            raise ValueError(f"members must be int indices or a bool mask, got {members.dtype}")
        members = members.to(torch.int64).reshape(-1)
        if len(members) and (int(members.min()) < 0 or int(members.max()) >= self.num_envs):
            raise ValueError(f"member indices must lie in [0, {self.num_envs}), got {members}")
        return members

    def spawn(self, num_envs: int, seed: int | None = None) -> Engine:
        """A sibling engine: same task, backend, device, dtype and task arguments, another
        batch size (a planner's B x N candidates, a GA's elite re-evaluation, an eval
        engine). Its members start unreset; its generator is seeded with ``seed``."""
        from rlwb.engine import make_engine

        factory = getattr(self, "_factory", None)
        if factory is None:
            raise RuntimeError("spawn() needs an engine built by rlwb.engine.make_engine")
        return make_engine(num_envs=num_envs, seed=seed, **factory)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this engine exactly (for training checkpoints):
        member states, current observations, episode statistics and the generator."""
        return {
            "backend": self.backend,
            "task_id": self.task_id,
            "state": self.get_state().cpu(),
            "obs": None if self._obs is None else self._obs.cpu(),
            **({"state_obs": _cpu(self._pixels.state)} if self._pixels is not None else {}),
            "episode_return": self.episode_return.cpu(),
            "episode_length": self.episode_length.cpu(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if saved.get("task_id") != self.task_id or saved.get("backend") != self.backend:
            raise ValueError(
                f"engine state is for {saved.get('task_id')!r} on backend "
                f"{saved.get('backend')!r}, not {self.task_id!r} on {self.backend!r}"
            )
        self.set_state(saved["state"].to(self.device))
        if saved["obs"] is not None:
            self._obs = saved["obs"].to(self.device, self.spec.observation_dtype)
            if self._pixels is not None:  # the frame stacks as saved, not refilled
                self._pixels.stack = self._obs
                if saved.get("state_obs") is not None:
                    self._pixels.state = saved["state_obs"].to(self.device, self.dtype)
        self.episode_return.copy_(saved["episode_return"])
        self.episode_length.copy_(saved["episode_length"])
        self.generator.set_state(saved["generator"])

    def rollout(
        self,
        actions: torch.Tensor | Policy,
        horizon: int | None = None,
        init_state: torch.Tensor | None = None,
        record_obs: bool = False,
        record_actions: bool = False,
        stop_on_truncation: bool = True,
    ) -> RolloutResult:
        """Run a whole horizon inside the engine, without autoreset.

        ``actions`` is either an open-loop sequence ``[N, H, A]`` (N = num_envs) or a
        batched policy ``obs[N, ...] -> action[N, A]`` (closed loop; ``horizon`` defaults
        to the time limit). With ``init_state`` the members start there (a single ``[S]``
        state is cloned into all of them), else from their current state (an engine never
        reset is reset first). Members stop at termination, and at the time limit when
        ``stop_on_truncation`` (counted from each member's elapsed steps). Afterwards the
        engine is restored to where it was before the call (member states, current
        observation, elapsed steps, episode statistics; the random generator is not
        rewound), so ``step`` continues the running episodes; a backend that cannot read
        states (``gym`` on envs without state access) leaves its members at the end and
        requires ``reset()`` before the next ``step``.
        """
        if self._obs is None and init_state is None:
            self.reset()
        open_loop = isinstance(actions, torch.Tensor)
        if open_loop:
            if (
                actions.ndim != 3
                or actions.shape[0] != self.num_envs
                or actions.shape[2] != self.action_dim
            ):
                raise ActionError(
                    f"open-loop actions must have shape (num_envs={self.num_envs}, H, "
                    f"action_dim={self.action_dim}), got {tuple(actions.shape)}"
                )
            horizon = actions.shape[1]
        elif horizon is None:
            if self.max_episode_steps is None:
                raise ValueError("closed-loop rollout of a task without time limit needs horizon=")
            horizon = self.max_episode_steps
        snapshot = self._snapshot()
        try:
            obs = self.set_state(init_state) if init_state is not None else self._obs
            elapsed0 = self.elapsed.clone()
            raw = self._rollout_fast_repeated(actions, int(horizon), obs) if open_loop else None
            if raw is None:
                raw = self._rollout_steps(actions, int(horizon), obs, elapsed0, stop_on_truncation,
                                          record_obs)  # fmt: skip
            return assemble(int(horizon), obs, *raw, elapsed0, self.max_episode_steps,
                            stop_on_truncation, record_obs, record_actions)  # fmt: skip
        finally:
            self._restore(snapshot)

    def _rollout_fast(
        self, actions: torch.Tensor, horizon: int, obs: torch.Tensor
    ) -> tuple[Any, ...] | None:
        """Backend fast path of an open-loop rollout: raw per-step ``(obs, reward, term,
        info, actions)`` ``[N, H, ...]`` for every member over the whole horizon (see
        :func:`rlwb.engine.rollout.assemble`), or None to use the stepping loop."""
        return None

    def _rollout_fast_repeated(
        self, actions: torch.Tensor, horizon: int, obs: torch.Tensor
    ) -> tuple[Any, ...] | None:
        """The fast path over ``horizon * action_repeat`` task steps, as engine steps."""
        k = self.action_repeat
        if self._pixels is not None:  # frames are rendered step by step
            return None
        if k == 1:
            return self._rollout_fast(actions, horizon, obs)
        raw = self._rollout_fast(actions.repeat_interleave(k, dim=1), horizon * k, obs)
        if raw is None:
            return None
        return (*collapse_repeats(*raw[:4], k), actions)

    def _policy_context(self) -> contextlib.AbstractContextManager:
        """Context a closed-loop policy is called in (no autograd by default)."""
        return torch.no_grad()

    def _rollout_steps(
        self,
        actions: torch.Tensor | Policy,
        horizon: int,
        obs: torch.Tensor,
        elapsed0: torch.Tensor,
        stop_on_truncation: bool,
        record_obs: bool = True,
    ) -> tuple[Any, ...]:
        """Reference rollout: one engine step per step, stopping once every member has
        ended. Returns the raw per-step outputs :func:`assemble` takes. Without
        ``record_obs`` only each member's latest observation is kept (frames of a long
        pixel rollout would not fit in memory), returned as a stride-0 ``[N, T, ...]``
        view, which is all :func:`assemble` then reads."""
        n = self.num_envs
        latest = None  # without record_obs: each member's observation at its last alive step
        alive = torch.ones(n, dtype=torch.bool, device=self.device)
        outs: list[tuple[torch.Tensor, ...]] = []
        infos: dict[str, list[torch.Tensor]] = {}
        taken = []
        live = None  # int64 indices of the members still running, once few enough are
        acting = None  # int64 indices of the members still running, once any has ended
        for t in range(horizon):
            if isinstance(actions, torch.Tensor):
                act = self.check_action(actions[:, t], (n, self.action_dim))
                if live is None:
                    obs, reward, term, info = self._advance(act)
                else:
                    obs, reward, term, info = self._advance_live(act, live, obs)
            else:
                with self._policy_context():
                    act, obs, reward, term, info = self._act_and_advance(actions, obs, acting, live)
            if not record_obs:
                latest = obs if acting is None or latest is None else latest.index_put(
                    (acting,), obs[acting])  # fmt: skip
            outs.append((obs if record_obs else obs[:, None][:, :0], reward.to(self.dtype), term))
            for key, value in info.items():
                infos.setdefault(key, []).append(value)
            taken.append(act)
            alive = still_alive(alive, term, elapsed0 + t + 1, self.max_episode_steps,
                                stop_on_truncation)  # fmt: skip
            running = int(alive.sum())
            if running == 0:
                break
            acting = alive.nonzero().squeeze(1) if running < n else None
            if self._steps_subsets and self.step_live_only and running * LIVE_STEPPING_SHARE < n:
                live = acting
        if not outs:  # horizon 0
            none = obs[:, None][:, :0]
            flat = none.new_zeros(n, 0)
            return none, flat, flat.bool(), {}, none.new_zeros(n, 0, self.action_dim)
        stack = [torch.stack(list(x), dim=1) for x in zip(*outs, strict=True)]
        info_t = {k: torch.stack(v, dim=1) for k, v in infos.items()}
        if not record_obs:
            stack[0] = latest[:, None].expand(n, len(outs), *latest.shape[1:])
        return stack[0], stack[1], stack[2], info_t, torch.stack(taken, dim=1)

    def _act_and_advance(
        self,
        policy: Policy,
        obs: torch.Tensor,
        acting: torch.Tensor | None,
        live: torch.Tensor | None,
    ) -> tuple[torch.Tensor, ...]:
        """One closed-loop step of a rollout: the policy's actions for the ``acting``
        members (None: all), then one engine step of the ``live`` members (None: all).
        Returns ``(action, obs, reward, terminated, info)``. Backends may overlap the two
        (the ``mujoco`` backend with forked workers does)."""
        act = self.check_action(self._act(policy, obs, acting), (self.num_envs, self.action_dim))
        if live is None:
            return (act, *self._advance(act))
        return (act, *self._advance_live(act, live, obs))

    def _act(self, policy: Policy, obs: torch.Tensor, live: torch.Tensor | None) -> torch.Tensor:
        """The closed-loop policy's actions. Once some members have ended (``live``: the
        others), a policy with ``act_some(obs[live], live, num_envs)`` (a population of
        networks, see :meth:`rlwb.policies.PopulationMLP.act_some`) computes only theirs;
        the ended members' rows are zero (placeholders the rollout rules never read)."""
        if live is None or not hasattr(policy, "act_some"):
            return policy(obs)
        some = policy.act_some(obs[live], live, self.num_envs)
        return some.new_zeros((self.num_envs, *some.shape[1:])).index_put_((live,), some)

    def _snapshot(self) -> Any:
        """Everything ``rollout`` must put back: the members' states, current observation
        and counters. Backends with cheaper ways (array copies) override this pair."""
        try:
            state = self._get_physics_state().clone()
        except NotImplementedError:
            state = None
        return state, self._counters()

    def _restore(self, snapshot: Any) -> None:
        state, counters = snapshot
        if state is None:  # cannot restore the members: they stay at the rollout's end
            self._obs = None
            return
        self._set_physics_state(state, self._all_members)
        self._restore_counters(counters)

    def _counters(self) -> tuple[Any, ...]:
        frames = None if self._pixels is None else self._pixels.snapshot()
        return (self._obs, self.elapsed.clone(), self.episode_return.clone(),
                self.episode_length.clone(), frames)  # fmt: skip

    def _count_one(
        self,
        reward: np.ndarray,
        term: np.ndarray,
        info: dict[str, Any],
        elapsed: np.ndarray,
        ret: np.ndarray,
        length: np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`_count_on_host` for a single member, on Python scalars (a dozen one-element
        ufunc calls cost as much as the bookkeeping of a whole batch); the same float64
        sum, so the numbers are bit-identical."""
        steps = int(elapsed[0]) + 1
        total = float(ret[0]) + float(reward[0])
        count = int(length[0]) + 1
        ended = bool(term[0])
        limit = self.max_episode_steps
        cut = limit is not None and steps >= limit and not ended
        tensor, array = torch.from_numpy, np.array  # ~0.7 us each, torch.tensor ~2.4 us
        info["episode_return"] = tensor(array([total]))
        info["episode_length"] = tensor(array([count], dtype=np.int64))
        if ended or cut:
            steps, total, count = 0, 0.0, 0
        elapsed[0], ret[0], length[0] = steps, total, count
        members = self._all_members if ended or cut else None
        return tensor(array([cut])), tensor(array([ended or cut])), members

    def _restore_counters(self, counters: tuple[Any, ...]) -> None:
        self._obs, self.elapsed, self.episode_return, self.episode_length, frames = counters
        if frames is not None:
            self._pixels.restore(frames)

    # ------------------------------------------------------------------ checks
    def check_action(self, action: Any, shape: tuple[int, int]) -> torch.Tensor:
        """Validate an action batch and bring it to the engine's device and dtype."""
        on_cpu = self.device.type == "cpu"
        if not (  # a CPU tensor that already conforms skips the checks below (a single-env
            # loop calls this every step, and each torch attribute read costs there)
            on_cpu
            and type(action) is torch.Tensor
            and action.dtype is self.dtype
            and action.shape == shape
            and action.is_cpu
        ):
            action = self._conform_action(action, shape)
        if not self._sum_is_finite(action, shape, on_cpu):
            bad = (~torch.isfinite(action)).any(1).nonzero().squeeze(1).tolist()
            if bad:  # (else finite values whose sum overflowed)
                raise ActionError(f"action contains NaN or inf for members {bad[:10]}")
        return action

    def _conform_action(self, action: Any, shape: tuple[int, int]) -> torch.Tensor:
        """``action`` as a tensor of ``shape`` on the engine's device and dtype, or an
        :class:`ActionError` naming what is wrong with it."""
        if not isinstance(action, torch.Tensor):
            if isinstance(action, np.ndarray):
                action = torch.from_numpy(action)
            else:
                raise ActionError(
                    f"action must be a torch.Tensor of shape {shape}, got {type(action).__name__}"
                )
        dtype = action.dtype
        if dtype.is_complex or not dtype.is_floating_point:
            raise ActionError(f"action must be a floating-point tensor, got dtype {dtype}")
        if action.shape != tuple(shape):
            raise ActionError(
                f"action must have shape (num_envs={shape[0]}, action_dim={shape[1]}) for "
                f"{self.task_id}, got {tuple(action.shape)}"
            )
        on_cpu = self.device.type == "cpu"
        if dtype != self.dtype or (not action.is_cpu if on_cpu else action.device != self.device):
            action = action.to(device=self.device, dtype=self.dtype)
        return action

    def _sum_is_finite(self, action: torch.Tensor, shape: tuple[int, int], on_cpu: bool) -> bool:
        """One reduction instead of isfinite+all (isfinite is slow on CPU: ~0.2 ms at 16k):
        a NaN or inf makes the sum non-finite (a finite sum that overflowed is re-checked
        by the caller). A small CPU batch is summed as a Python list, no tensor op."""
        if not on_cpu:
            return bool(torch.isfinite(action.sum()))
        if shape[0] * shape[1] <= SMALL_ACTION and self.dtype in _NUMPY_FLOATS:
            rows = action.tolist()  # (no Tensor.numpy(): ~2 us in a stepping loop)
            return math.isfinite(sum(rows[0]) if len(rows) == 1 else sum(map(sum, rows)))
        plain = action.detach() if action.requires_grad else action
        return math.isfinite(float(plain.sum()))

    # ------------------------------------------------------------------ views
    def as_gymnasium_vector(self) -> gym.vector.VectorEnv:
        """This engine as a ``gymnasium.vector.VectorEnv`` (numpy in/out)."""
        from rlwb.engine.adapters import GymnasiumVectorView

        return GymnasiumVectorView(self)

    def as_sb3_vec_env(self):
        """This engine as a Stable-Baselines3 ``VecEnv``."""
        from rlwb.engine.adapters import SB3VecEnvView

        return SB3VecEnvView(self)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(task={self.task_id!r}, num_envs={self.num_envs}, device={self.device})"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
