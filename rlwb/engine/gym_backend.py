"""The ``gym`` backend: any registered Gymnasium env id behind the engine API.

Slow but universal: each member is one ordinary Gymnasium env, stepped in a Python loop
(``vectorization="sync"``, the default, what ``gymnasium.vector.SyncVectorEnv`` does) or in
worker processes (``vectorization="async"``: ``gymnasium.vector.AsyncVectorEnv`` with its
autoreset disabled). The engine base class owns autoreset and time limits, so the envs are
built *without* their ``TimeLimit`` wrapper and the engine truncates at the spec's
``max_episode_steps`` (or the ``max_episode_steps=`` engine option of ``make_engine``).

Seeding follows ``SyncVectorEnv``: ``reset(seed=s)`` resets member ``i`` with seed ``s + i``;
autoresets do not reseed (each member's own random stream continues). The first reset of an
engine built with ``seed=`` draws ``s`` from the engine's generator, so seeded engines
reproduce (as does ``engine.seed(s)`` before ``reset()``). The result: with the same seed and
actions, a float64 engine returns exactly what a ``SyncVectorEnv`` in ``SAME_STEP`` autoreset
mode returns (a float32 engine rounds it).

Deviations from Gymnasium, on purpose: observations are flattened to one vector with
``gymnasium.spaces.flatten`` when the env's observation space is not a ``Box`` (e.g. a
``Dict``); only ``Box`` action spaces are supported; numeric scalar entries of the step
``info`` (e.g. ``reward_ctrl``) become ``[B]`` tensors, everything else is dropped; the
observation space reports the engine's dtype (``float32`` by default, like the other
backends) rather than the env's.

State (``get_state``/``set_state``) works for MuJoCo envs (``mj_getState`` with the
integration signature, which makes a clone continue bit-exactly) and classic-control envs
with a ``.state`` array. Other envs raise :class:`StateNotSupportedError`. Checkpoints
(``state_dict``) do not include the members' own random streams.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlwb import tasks
from rlwb.engine.base import Engine
from rlwb.engine.pixels import PixelOptions
from rlwb.envs.mujoco.log import quiet_known_warnings
from rlwb.errors import BackendUnavailableError, ConfigError, UnknownTaskError

VECTORIZATIONS = ("sync", "async")


class StateNotSupportedError(BackendUnavailableError, NotImplementedError):
    """The env's physics state cannot be read or written by the ``gym`` backend."""


# --------------------------------------------------------------------------- one member
def _state_kind(env: gym.Env) -> str | None:
    """How a member's state is accessed: ``"mujoco"``, ``"classic"`` or ``None``."""
    base = env.unwrapped
    if _maze_body(base) is not None:
        return "maze"
    if hasattr(base, "model") and hasattr(base, "data") and _takes_no_arguments(base, "_get_obs"):
        try:
            import mujoco

            if isinstance(base.model, mujoco.MjModel):
                return "mujoco"
        except ImportError:  # pragma: no cover - mujoco is a dependency
            return None
    if hasattr(base, "state"):
        return "classic"
    return None


def _maze_body(base: Any) -> Any:
    """The MuJoCo env inside a Gymnasium-Robotics maze (``point_env``, ``ant_env``), whose
    state with the maze's ``goal`` is the whole member state; None for other envs."""
    if not hasattr(base, "goal") or not hasattr(base, "update_target_site_pos"):
        return None
    body = getattr(base, "point_env", None) or getattr(base, "ant_env", None)
    return body if hasattr(body, "data") else None


def _mujoco_state(model: Any, data: Any) -> np.ndarray:
    import mujoco

    sig = mujoco.mjtState.mjSTATE_INTEGRATION
    out = np.empty(mujoco.mj_stateSize(model, sig), dtype=np.float64)
    mujoco.mj_getState(model, data, out, sig)
    return out


def _load_mujoco_state(model: Any, data: Any, row: np.ndarray, name: str) -> None:
    import mujoco

    sig = mujoco.mjtState.mjSTATE_INTEGRATION
    if row.shape != (mujoco.mj_stateSize(model, sig),):
        raise ValueError(f"state of size {row.size} does not fit {name}")
    mujoco.mj_setState(model, data, row, sig)
    mujoco.mj_forward(model, data)
    # Gymnasium's step leaves cfrc_ext etc. up to date; observations may read them.
    mujoco.mj_rnePostConstraint(model, data)


def _takes_no_arguments(obj: Any, name: str) -> bool:
    """Whether ``obj.name()`` can be called bare: Gymnasium-Robotics' mazes have a MuJoCo
    model but build observations from more than the physics (``_get_obs(point_obs)`` and a
    goal), so their state is not the physics state alone."""
    method = getattr(obj, name, None)
    if not callable(method):
        return False
    params = inspect.signature(method).parameters.values()
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)  # fmt: skip


class MemberEnv(gym.Wrapper):
    """One member: flattens observations and exposes state access to ``call``.

    The methods are called by name through ``AsyncVectorEnv.call`` too, so each member knows
    its ``index`` and picks its own row from batched arguments.
    """

    def __init__(self, env: gym.Env, index: int):
        super().__init__(env)
        self.index = index
        self._raw_space = env.observation_space
        self._flatten = not isinstance(env.observation_space, gym.spaces.Box)
        if self._flatten:
            self.observation_space = gym.spaces.flatten_space(env.observation_space)

    def _obs(self, obs: Any) -> np.ndarray:
        if self._flatten:
            return gym.spaces.flatten(self._raw_space, obs)
        return obs

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), reward, terminated, truncated, info

    def rlwb_state_kind(self) -> str | None:
        return _state_kind(self.env)

    def rlwb_get_state(self) -> np.ndarray:
        base, kind = self.env.unwrapped, self.rlwb_state_kind()
        if kind == "mujoco":
            return _mujoco_state(base.model, base.data)
        if kind == "maze":  # the body's physics, then the goal
            body = _maze_body(base)
            return np.concatenate([_mujoco_state(body.model, body.data), base.goal])
        if kind == "classic":
            return np.asarray(base.state, dtype=np.float64).ravel().copy()
        raise StateNotSupportedError(self._unsupported())

    def rlwb_set_state(self, states: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """Load ``states[self.index]`` when ``mask[self.index]``; return the new obs."""
        if not mask[self.index]:
            return None
        row = np.asarray(states[self.index], dtype=np.float64)
        base, kind = self.env.unwrapped, self.rlwb_state_kind()
        if kind == "mujoco":
            _load_mujoco_state(base.model, base.data, row, self.spec_id())
            return self._obs(base._get_obs())
        if kind == "maze":
            body, goal_size = _maze_body(base), len(base.goal)
            _load_mujoco_state(body.model, body.data, row[:-goal_size], self.spec_id())
            base.goal = row[-goal_size:].copy()
            base.update_target_site_pos()
            body_obs = body._get_obs()  # the point env returns (obs, info)
            return self._obs(
                base._get_obs(body_obs[0] if isinstance(body_obs, tuple) else body_obs)
            )
        if kind == "classic":
            old = np.asarray(base.state)
            base.state = row.reshape(old.shape).astype(old.dtype)
            if hasattr(base, "_get_obs"):
                return self._obs(base._get_obs())
            space = base.observation_space
            return self._obs(np.asarray(base.state, dtype=space.dtype).reshape(space.shape))
        raise StateNotSupportedError(self._unsupported())

    def rlwb_render(self, mask: np.ndarray) -> np.ndarray | None:
        """The env's ``rgb_array`` frame when ``mask[self.index]``."""
        return self.env.render() if mask[self.index] else None

    def spec_id(self) -> str:
        return self.env.spec.id if self.env.spec is not None else type(self.env.unwrapped).__name__

    def _unsupported(self) -> str:
        return (
            f"get_state/set_state is not supported for Gymnasium env {self.spec_id()!r} on the "
            "gym backend: only MuJoCo envs, Gymnasium-Robotics mazes and classic-control envs "
            "with a .state array are"
        )


def _make_member(
    spec: gym.envs.registration.EnvSpec, kwargs: dict[str, Any], index: int
) -> gym.Env:
    quiet_known_warnings()  # Gymnasium's MuJoCo models load as rlwb's do
    env = gym.make(spec, disable_env_checker=True, **kwargs)
    return MemberEnv(env, index)


# --------------------------------------------------------------------------- member pools
def _numeric_infos(infos: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Numeric scalar info entries present in every member, as ``[B]`` arrays."""
    if not infos:
        return {}
    out = {}
    for key, value in infos[0].items():
        if key.startswith("_") or not _is_scalar(value):
            continue
        if all(key in info and _is_scalar(info[key]) for info in infos):
            out[key] = np.array([float(info[key]) for info in infos])
    return out


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) or (
        isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "biuf"
    )


class _SyncPool:
    """Members stepped one after another in this process."""

    def __init__(self, env_fns: list[functools.partial]):
        self.envs = [fn() for fn in env_fns]

    def reset(self, mask: np.ndarray, seeds: list[int | None]) -> dict[int, np.ndarray]:
        return {i: self.envs[i].reset(seed=seeds[i])[0] for i in np.flatnonzero(mask).tolist()}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        results = [env.step(a) for env, a in zip(self.envs, actions, strict=True)]
        obs = np.stack([r[0] for r in results])
        reward = np.array([r[1] for r in results], dtype=np.float64)
        terminated = np.array([r[2] for r in results], dtype=bool)
        return obs, reward, terminated, _numeric_infos([r[4] for r in results])

    def call(self, name: str, *args: Any) -> list[Any]:
        return [getattr(env, name)(*args) for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()


class _AsyncPool:
    """Members in worker processes: ``AsyncVectorEnv`` with autoreset disabled."""

    def __init__(self, env_fns: list[functools.partial]):
        from gymnasium.vector import AsyncVectorEnv, AutoresetMode

        self.vec = AsyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.DISABLED, copy=True)

    def reset(self, mask: np.ndarray, seeds: list[int | None]) -> dict[int, np.ndarray]:
        obs, _ = self.vec.reset(seed=list(seeds), options={"reset_mask": mask.copy()})
        return {i: obs[i] for i in np.flatnonzero(mask).tolist()}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, _, infos = self.vec.step(actions)
        numeric = {}
        for key, value in infos.items():
            if key.startswith("_") or not isinstance(value, np.ndarray):
                continue
            if value.ndim == 1 and value.dtype.kind in "biuf" and infos[f"_{key}"].all():
                numeric[key] = value.astype(np.float64)
        return obs, reward.astype(np.float64), terminated.astype(bool), numeric

    def call(self, name: str, *args: Any) -> list[Any]:
        return list(self.vec.call(name, *args))

    def close(self) -> None:
        self.vec.close()


# --------------------------------------------------------------------------- the engine
class GymEngine(Engine):
    """``num_envs`` Gymnasium envs of one id as an :class:`Engine` (see the module doc).

    ``task`` is an rlwb task id (its ``gym_id`` is used) or any registered Gymnasium id;
    ``task_kwargs`` go to ``gymnasium.make``.
    """

    backend = "gym"

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: torch.device | str | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        vectorization: str = "sync",
        **task_kwargs: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if vectorization not in VECTORIZATIONS:
            raise ConfigError(
                f"vectorization must be one of {', '.join(VECTORIZATIONS)}, got {vectorization!r}"
            )
        entry = tasks.find(task)
        gym_id = entry.gym_id if entry is not None and entry.gym_id else task
        if gym_id not in gym.registry:
            raise UnknownTaskError(tasks.unknown_task_message(task))
        spec = gym.spec(gym_id)
        limit = spec.max_episode_steps
        # No TimeLimit inside the members: the engine counts steps and truncates.
        spec = dataclasses.replace(spec, max_episode_steps=None)

        self.task_id = task
        self.gym_id = gym_id
        self.num_envs = num_envs
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.vectorization = vectorization
        self.max_episode_steps = None if limit is None else int(limit)

        probe = self._probe(spec, task_kwargs)
        self.single_action_space = probe.action_space
        self.single_observation_space = _box_as(probe.observation_space, dtype)
        self._state_shape = tuple(self.single_observation_space.shape)  # (images aside)
        self.dt = _env_dt(probe.unwrapped)
        self._state_kind = probe.rlwb_state_kind()
        self._state_size = len(probe.rlwb_get_state()) if self._state_kind else None
        self._render_kind = _render_kind(probe.unwrapped, gym_id)
        probe.close()

        self._member_spec, self._member_kwargs = spec, task_kwargs
        self._pool = self._make_pool(task_kwargs)
        self._pending_seed: int | None = None
        self._members_seeded = False
        self._init_bookkeeping(seed)

    def _make_pool(self, kwargs: dict[str, Any]) -> _SyncPool | _AsyncPool:
        spec = self._member_spec
        fns = [functools.partial(_make_member, spec, kwargs, i) for i in range(self.num_envs)]
        return _AsyncPool(fns) if self.vectorization == "async" else _SyncPool(fns)

    @classmethod
    def render_refusal(cls) -> str:
        return ""

    def _setup_rendering(self, options: PixelOptions) -> None:
        """Rebuild the members to render ``rgb_array`` frames of the image size: Gymnasium's
        MuJoCo envs (their default camera, or ``camera`` by id or name) and dm_control's
        through shimmy (``physics.render``; camera as on the ``mujoco`` backend)."""
        size, camera = options.image_size, options.camera
        if self._render_kind == "dm_control":
            if camera is None:
                entry = tasks.find(self.task_id)
                camera = tasks.build_task(entry, {}, []).render_camera() if entry else 0
            extra: dict[str, Any] = {
                "render_kwargs": {"width": size, "height": size, "camera_id": camera}
            }
        elif self._render_kind == "mujoco":
            extra = {"width": size, "height": size}
            if camera is not None:
                extra["camera_name" if isinstance(camera, str) else "camera_id"] = camera
        else:
            raise ConfigError(
                f"pixel observations on backend 'gym' need a MuJoCo or dm_control env; "
                f"{self.gym_id!r} renders at a size of its own"
            )
        self._pool.close()
        self._pool = self._make_pool({**self._member_kwargs, "render_mode": "rgb_array", **extra})

    def _render_members(self, members: torch.Tensor) -> torch.Tensor:
        mask = np.zeros(self.num_envs, dtype=bool)
        index = members.cpu().numpy()
        mask[index] = True
        frames = self._pool.call("rlwb_render", mask)
        rows = np.stack([frames[i] for i in index.tolist()]).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)

    def _probe(self, spec: gym.envs.registration.EnvSpec, kwargs: dict[str, Any]) -> MemberEnv:
        """Build one member in this process to read spaces, check support and fail early."""
        try:
            env = _make_member(spec, kwargs, 0)
        except TypeError as exc:
            raise ConfigError(f"bad keyword arguments for {self.gym_id!r}: {exc}") from exc
        except gym.error.Error as exc:
            raise BackendUnavailableError(f"cannot build {self.gym_id!r}: {exc}") from exc
        if not isinstance(env.action_space, gym.spaces.Box):
            env.close()
            raise BackendUnavailableError(
                f"the gym backend supports Box (continuous) action spaces only; "
                f"{self.gym_id!r} has {env.action_space}"
            )
        env.reset(seed=0)  # classic-control envs create .state on reset
        return env

    # ------------------------------------------------------------------ seeding
    def seed(self, seed: int) -> None:
        """Reseed the generator; the next ``reset()`` reseeds the members from it."""
        super().seed(seed)
        self._members_seeded = False

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every member; ``seed=s`` seeds member ``i`` with ``s + i`` (as
        ``SyncVectorEnv``). Without a seed the members' random streams continue, except on
        the very first reset, whose seed comes from the engine's generator."""
        if seed is None and not self._members_seeded:
            seed = int(torch.randint(0, 2**31 - 1 - self.num_envs, (1,), generator=self.generator))
        self._pending_seed = seed
        try:
            return super().reset(seed)
        finally:
            self._pending_seed = None

    def _seeds(self) -> list[int | None]:
        if self._pending_seed is None:
            return [None] * self.num_envs
        self._members_seeded = True
        return [self._pending_seed + i for i in range(self.num_envs)]

    # ------------------------------------------------------------------ primitives
    def _to_torch(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), device=self.device).to(dtype or self.dtype)

    def _obs_tensor(self, rows: list[np.ndarray]) -> torch.Tensor:
        obs = np.stack([np.asarray(r).reshape(self._state_shape) for r in rows])
        return self._to_torch(obs)

    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[members.cpu().numpy()] = True
        obs = self._pool.reset(mask, self._seeds())
        return self._obs_tensor([obs[i] for i in members.tolist()])

    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        obs, reward, terminated, infos = self._pool.step(action.detach().cpu().numpy())
        obs = self._to_torch(obs.reshape(self.num_envs, *self._state_shape))
        info = {k: self._to_torch(v) for k, v in infos.items()}
        return obs, self._to_torch(reward), self._to_torch(terminated, torch.bool), info

    def _ensure_started(self) -> None:
        if self._obs is None:
            self.reset()

    def _get_physics_state(self) -> torch.Tensor:
        self._check_state_support()
        self._ensure_started()
        states = np.stack(self._pool.call("rlwb_get_state"))
        return self._to_torch(states, torch.float64)

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        self._check_state_support()
        self._ensure_started()
        rows = np.zeros((self.num_envs, state.shape[1]), dtype=np.float64)
        mask = np.zeros(self.num_envs, dtype=bool)
        idx = members.cpu().numpy()
        rows[idx] = state.detach().cpu().numpy()
        mask[idx] = True
        obs = self._pool.call("rlwb_set_state", rows, mask)
        return self._obs_tensor([obs[i] for i in idx.tolist()])

    def _physics_state_size(self) -> int | None:
        return self._state_size

    def _check_state_support(self) -> None:
        if self._state_kind is None:
            raise StateNotSupportedError(
                f"get_state/set_state is not supported for Gymnasium env {self.gym_id!r} on "
                "the gym backend: only MuJoCo envs, Gymnasium-Robotics mazes and classic-control "
                "envs with a .state array are"
            )

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
            self._pool = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _render_kind(base: gym.Env, gym_id: str) -> str | None:
    """How a member renders pixel observations: ``"mujoco"`` (Gymnasium's MuJoCo envs),
    ``"dm_control"`` (through shimmy) or None (no image of a chosen size)."""
    if gym_id.startswith("dm_control/"):
        return "dm_control"
    try:
        from gymnasium.envs.mujoco import MujocoEnv
    except ImportError:  # no mujoco: no MuJoCo envs either
        return None
    return "mujoco" if isinstance(base, MujocoEnv) else None


def _box_as(space: gym.spaces.Box, dtype: torch.dtype) -> gym.spaces.Box:
    """The observation space with the dtype the engine returns (bounds kept)."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), space.shape)
    return gym.spaces.Box(low.astype(np_dtype), high.astype(np_dtype), space.shape, np_dtype)


def _env_dt(base: gym.Env) -> float:
    """Seconds per env step: ``dt`` (MuJoCo, Pendulum), ``tau`` (CartPole), else 1/fps."""
    for name in ("dt", "tau"):
        value = getattr(base, name, None)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    fps = base.metadata.get("render_fps")
    return 1.0 / fps if fps else 1.0
