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
  ``alive`` is False.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlwb.errors import ActionError

Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EngineSpec:
    """What an agent needs to know about an engine to build its networks."""

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


@dataclass
class RolloutResult:
    """A batch of N trajectories of horizon H, all tensors on the engine's device.

    ``rewards[n, t]`` is zero once member n has terminated (``alive[n, t]`` False).
    ``returns`` and ``lengths`` sum over alive steps. ``observations`` (if recorded) has
    H + 1 entries: the initial observation and one after each step (frozen after the end).
    """

    rewards: torch.Tensor  # [N, H]
    terminated: torch.Tensor  # [N, H] bool, True at the step the member terminated
    truncated: torch.Tensor  # [N, H] bool, True at the step the time limit hit
    alive: torch.Tensor  # [N, H] bool, the step was executed
    returns: torch.Tensor  # [N]
    lengths: torch.Tensor  # [N] int64
    final_obs: torch.Tensor  # [N, *obs_shape]
    observations: torch.Tensor | None = None  # [N, H + 1, *obs_shape]
    actions: torch.Tensor | None = None  # [N, H, A]
    infos: dict[str, torch.Tensor] | None = None  # per-step reward components [N, H]


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
    dt: float

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
        )

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
        self._obs = self._reset_members(self._all_members)
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
        obs, reward, terminated, info = self._step_members(action)
        self.elapsed += 1
        self.episode_return += reward.to(torch.float64)
        self.episode_length += 1
        if self.max_episode_steps is not None:
            truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        else:
            truncated = torch.zeros_like(terminated)
        done = terminated | truncated
        info["done"] = done
        info["final_obs"] = obs
        info["episode_return"] = self.episode_return.clone()
        info["episode_length"] = self.episode_length.clone()
        if bool(done.any()):
            members = done.nonzero().squeeze(1)
            obs = obs.clone()
            obs[members] = self._reset_members(members)
            self.elapsed[members] = 0
            self.episode_return[members] = 0.0
            self.episode_length[members] = 0
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def get_state(self) -> torch.Tensor:
        """Full state of every member, float64 ``[B, S]``: physics, then elapsed steps."""
        physics = self._get_physics_state().to(torch.float64)
        return torch.cat([physics, self.elapsed.to(physics)[:, None]], dim=1)

    @property
    def state_dim(self) -> int:
        return int(self.get_state().shape[1])

    def set_state(self, state: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Load states into members (all by default; a single ``[S]`` state is broadcast).

        Returns the observation of every member after loading.
        """
        state = torch.as_tensor(state, dtype=torch.float64, device=self.device)
        if members is None:
            members = self._all_members
        members = self._member_index(members)
        if state.ndim == 1:
            state = state.expand(len(members), -1)
        expected = self.state_dim
        if state.ndim != 2 or state.shape != (len(members), expected):
            raise ValueError(
                f"state must have shape ({len(members)}, {expected}) or ({expected},), "
                f"got {tuple(state.shape)}"
            )
        member_obs = self._set_physics_state(state[:, :-1], members)
        self.elapsed[members] = state[:, -1].round().to(torch.int64)
        self.episode_return[members] = 0.0
        self.episode_length[members] = 0
        if self._obs is None:
            self._obs = torch.zeros(
                (self.num_envs, *self.observation_shape), dtype=self.dtype, device=self.device
            )
        else:
            self._obs = self._obs.clone()
        self._obs[members] = member_obs
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
            self._obs = saved["obs"].to(self.device, self.dtype)
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
        state is cloned into all of them), else from their current state. Members stop at
        termination, and at the time limit when ``stop_on_truncation``. Afterwards the
        members hold their final states; call ``reset()`` before stepping again.
        """
        if init_state is not None:
            obs = self.set_state(init_state)
        elif self._obs is None:
            obs = self.reset()
        else:
            obs = self._obs
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
        return self._rollout_loop(
            actions, int(horizon), obs, open_loop, record_obs, record_actions, stop_on_truncation
        )

    def _rollout_loop(
        self,
        actions: torch.Tensor | Policy,
        horizon: int,
        obs: torch.Tensor,
        open_loop: bool,
        record_obs: bool,
        record_actions: bool,
        stop_on_truncation: bool,
    ) -> RolloutResult:
        """Reference rollout: one ``_step_members`` per step. Backends may override."""
        n, dev = self.num_envs, self.device
        rewards = torch.zeros(n, horizon, dtype=self.dtype, device=dev)
        terminated = torch.zeros(n, horizon, dtype=torch.bool, device=dev)
        truncated = torch.zeros(n, horizon, dtype=torch.bool, device=dev)
        alive_steps = torch.zeros(n, horizon, dtype=torch.bool, device=dev)
        alive = torch.ones(n, dtype=torch.bool, device=dev)
        observations = [obs] if record_obs else None
        taken = [] if record_actions else None
        final_obs = obs.clone()
        components: dict[str, list[torch.Tensor]] = {}
        for t in range(horizon):
            if open_loop:
                act = actions[:, t]
            else:
                with torch.no_grad():
                    act = actions(obs)
            act = self.check_action(act, (n, self.action_dim))
            obs, reward, term, info = self._step_members(act)
            self.elapsed += 1
            alive_steps[:, t] = alive
            rewards[:, t] = torch.where(
                alive, reward.to(self.dtype), torch.zeros((), dtype=self.dtype, device=dev)
            )
            terminated[:, t] = term & alive
            if self.max_episode_steps is not None:
                truncated[:, t] = (self.elapsed >= self.max_episode_steps) & alive & ~term
            final_obs = torch.where(_expand_mask(alive, obs), obs, final_obs)
            for key, value in info.items():
                keep = _expand_mask(alive, value)
                components.setdefault(key, []).append(torch.where(keep, value, 0))
            alive = alive & ~terminated[:, t]
            if stop_on_truncation:
                alive = alive & ~truncated[:, t]
            if record_obs:
                observations.append(final_obs)
            if record_actions:
                taken.append(act)
            if not bool(alive.any()):
                break
        lengths = alive_steps.sum(1)
        self._obs = final_obs
        return RolloutResult(
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            alive=alive_steps,
            returns=rewards.sum(1),
            lengths=lengths,
            final_obs=final_obs,
            observations=_pad_stack(observations, horizon + 1, True) if record_obs else None,
            actions=_pad_stack(taken, horizon, False) if record_actions else None,
            infos={k: _pad_stack(v, horizon, False) for k, v in components.items()},
        )

    # ------------------------------------------------------------------ checks
    def check_action(self, action: Any, shape: tuple[int, int]) -> torch.Tensor:
        """Validate an action batch and bring it to the engine's device and dtype."""
        if not isinstance(action, torch.Tensor):
            if isinstance(action, np.ndarray):
                action = torch.from_numpy(action)
            else:
                raise ActionError(
                    f"action must be a torch.Tensor of shape {shape}, got {type(action).__name__}"
                )
        if action.dtype.is_complex or not action.dtype.is_floating_point:
            raise ActionError(f"action must be a floating-point tensor, got dtype {action.dtype}")
        if tuple(action.shape) != tuple(shape):
            raise ActionError(
                f"action must have shape (num_envs={shape[0]}, action_dim={shape[1]}) for "
                f"{self.task_id}, got {tuple(action.shape)}"
            )
        action = action.to(device=self.device, dtype=self.dtype)
        if not bool(torch.isfinite(action).all()):
            bad = (~torch.isfinite(action)).any(1).nonzero().squeeze(1).tolist()
            raise ActionError(f"action contains NaN or inf for members {bad[:10]}")
        return action

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


def _expand_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def _pad_stack(items: list[torch.Tensor], length: int, repeat_last: bool) -> torch.Tensor:
    """Stack per-step tensors along dim 1 and pad an early-stopped rollout to ``length``:
    observations repeat their last entry, per-step values are padded with zeros."""
    stacked = torch.stack(items, dim=1)
    missing = length - stacked.shape[1]
    if missing <= 0:
        return stacked
    last = stacked[:, -1:]
    pad = last if repeat_last else torch.zeros_like(last)
    return torch.cat([stacked, pad.expand(-1, missing, *last.shape[2:])], dim=1)
