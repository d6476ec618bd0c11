"""Views of an :class:`~rlwb.engine.Engine` for other libraries (numpy in, numpy out).

* :class:`GymnasiumVectorView` is a ``gymnasium.vector.VectorEnv`` in ``SAME_STEP``
  autoreset mode: a finished member's returned observation already starts its next
  episode; ``info["final_obs"]`` (object array, valid where ``info["_final_obs"]``) holds
  the last observation and ``info["final_info"]`` that step's reward components and episode
  statistics (``episode_return``, ``episode_length``), the layout ``SyncVectorEnv`` uses.
  Episode statistics are kept out of the top-level ``"episode"`` key so that
  ``gymnasium.wrappers.vector.RecordEpisodeStatistics`` can still wrap the view.
* :class:`SB3VecEnvView` is a Stable-Baselines3 ``VecEnv``: ``infos`` is a list of dicts,
  with ``terminal_observation`` and ``TimeLimit.truncated`` at episode ends, plus a
  Monitor-style ``episode`` entry (``r``, ``l``, ``t``), so SB3 logs returns and
  ``evaluate_policy`` counts whole episodes without an extra ``Monitor`` wrapper.

Both views share the engine (no copies of the physics): stepping a view steps the engine.
The engine seeds as one stream, so per-member seed lists other than ``[s, s+1, ...]`` are
rejected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env import VecEnv

from rlwb.engine.base import Engine
from rlwb.errors import ConfigError


def _observation_space(engine: Engine) -> gym.spaces.Box:
    """The engine's single observation space with the dtype the engine actually returns."""
    space = engine.single_observation_space
    if space.dtype == np.uint8:  # images (observation="pixels"): already what is returned
        return space
    dtype = np.float64 if engine.dtype == torch.float64 else np.float32
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), space.shape).astype(dtype)
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), space.shape).astype(dtype)
    return gym.spaces.Box(low, high, shape=space.shape, dtype=dtype)


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _engine_seed(seed: int | Sequence[int | None] | None, num_envs: int) -> int | None:
    """One engine seed from Gymnasium's/SB3's seed forms (``int`` or per-member list)."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    seeds = list(seed)
    if all(s is None for s in seeds):
        return None
    if len(seeds) != num_envs or any(s is None for s in seeds):
        raise ConfigError(f"seed list must give all {num_envs} members a seed, got {seeds}")
    if seeds != [int(seeds[0]) + i for i in range(num_envs)]:
        raise ConfigError(
            "the engine seeds its members as one stream: pass one int seed (or [s, s+1, ...])"
        )
    return int(seeds[0])


class GymnasiumVectorView(VectorEnv):
    """An engine as a ``gymnasium.vector.VectorEnv`` (``SAME_STEP`` autoreset)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.num_envs = engine.num_envs
        self.single_observation_space = _observation_space(engine)
        self.single_action_space = engine.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.render_mode = None
        task_id = getattr(engine, "gym_id", engine.task_id)
        self.spec = gym.spec(task_id) if task_id in gym.registry else None

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ConfigError(f"reset options are not supported by the engine: {sorted(options)}")
        obs = self.engine.reset(seed=_engine_seed(seed, self.num_envs))
        return _numpy(obs), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        action = torch.as_tensor(np.asarray(actions), device=self.engine.device)
        action = action.reshape(self.num_envs, -1)
        obs, reward, terminated, truncated, info = self.engine.step(action)
        done = _numpy(info["done"])
        infos: dict[str, Any] = {}
        components = {
            k: _numpy(v)
            for k, v in info.items()
            if k not in ("done", "final_obs", "episode_return", "episode_length")
        }
        for key, value in components.items():
            infos[key], infos[f"_{key}"] = value, np.ones(self.num_envs, dtype=bool)
        if done.any():
            final = _numpy(info["final_obs"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = final[i]
            stats = {
                "episode_return": _numpy(info["episode_return"]),
                "episode_length": _numpy(info["episode_length"]),
                **components,
            }
            final_info: dict[str, Any] = {}
            for key, value in stats.items():
                final_info[key] = np.where(done, value, np.zeros_like(value))
                final_info[f"_{key}"] = done.copy()
            infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
            infos["final_info"], infos["_final_info"] = final_info, done.copy()
        return (
            _numpy(obs),
            _numpy(reward).astype(np.float64),
            _numpy(terminated).astype(bool),
            _numpy(truncated).astype(bool),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        self.engine.close()


class SB3VecEnvView(VecEnv):
    """An engine as a Stable-Baselines3 ``VecEnv``.

    ``get_attr``/``set_attr``/``env_method`` act on the engine itself (all members share
    one engine); asking for a subset of members is rejected.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._actions: torch.Tensor | None = None
        self._episode_start = time.perf_counter()
        super().__init__(engine.num_envs, _observation_space(engine), engine.single_action_space)

    def reset(self) -> np.ndarray:
        seed = _engine_seed(self._seeds, self.num_envs)
        obs = self.engine.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return _numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        action = torch.as_tensor(np.asarray(actions), device=self.engine.device)
        self._actions = action.reshape(self.num_envs, -1)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        obs, reward, terminated, truncated, info = self.engine.step(self._actions)
        self._actions = None
        done = _numpy(info["done"])
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            final = _numpy(info["final_obs"])
            term, trunc = _numpy(terminated), _numpy(truncated)
            ret, length = _numpy(info["episode_return"]), _numpy(info["episode_length"])
            elapsed = round(time.perf_counter() - self._episode_start, 6)
            for i in np.flatnonzero(done):
                infos[i] = {
                    "terminal_observation": final[i],
                    "TimeLimit.truncated": bool(trunc[i] and not term[i]),
                    "episode": {"r": float(ret[i]), "l": int(length[i]), "t": elapsed},
                }
        return _numpy(obs), _numpy(reward).astype(np.float32), done.astype(bool), infos

    def close(self) -> None:
        self.engine.close()

    def _check_all(self, indices: Any) -> int:
        members = list(self._get_indices(indices))
        if sorted(members) != list(range(self.num_envs)):
            raise ConfigError("the engine's members share one engine; address all of them")
        return len(members)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        n = len(list(self._get_indices(indices)))
        if attr_name == "render_mode":
            return [None] * n
        return [getattr(self.engine, attr_name)] * n

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        self._check_all(indices)
        setattr(self.engine, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        n = self._check_all(indices)
        result = getattr(self.engine, method_name)(*method_args, **method_kwargs)
        return [result] * n

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """Monitor counts as applied: the view reports Monitor's ``episode`` info itself."""
        from stable_baselines3.common.monitor import Monitor

        n = len(list(self._get_indices(indices)))
        return [issubclass(wrapper_class, Monitor)] * n

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds for the next ``reset`` (SB3's convention: member ``i`` gets ``seed + i``)."""
        return super().seed(seed)

    def _get_indices(self, indices: Any) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices


class SB3GoalVecEnvView(SB3VecEnvView):
    """A goal-conditioned engine as an SB3 ``VecEnv`` with Gymnasium-Robotics' ``Dict``
    observations (``observation``, ``achieved_goal``, ``desired_goal``, cut from the flat
    observation by the task's ``observation_slices``) and a batched ``compute_reward`` for
    SB3's ``HerReplayBuffer``."""

    def __init__(self, engine: Engine):
        from rlwb.goals import GOAL_KEYS, goal_task, observation_slices

        self.task = goal_task(engine.spec)
        self.slices = {k: observation_slices(engine.spec, self.task)[k] for k in GOAL_KEYS}
        super().__init__(engine)
        box = self.observation_space
        self.observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(box.low[a:b], box.high[a:b], dtype=box.dtype)
                for k, (a, b) in self.slices.items()
            }
        )

    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {k: obs[..., a:b].copy() for k, (a, b) in self.slices.items()}

    def reset(self) -> dict[str, np.ndarray]:
        return self._split(super().reset())

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        obs, reward, done, infos = super().step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._split(info["terminal_observation"])
        return self._split(obs), reward, done, infos

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        if method_name != "compute_reward":
            return super().env_method(method_name, *method_args, indices=indices, **method_kwargs)
        achieved, desired = method_args[0], method_args[1]
        reward = self.task.compute_reward(torch.as_tensor(achieved), torch.as_tensor(desired))
        return [_numpy(reward).astype(np.float32)] * len(list(self._get_indices(indices)))
