"""Atari games on EnvPool's C++ threads (``pip install "rlwb[atari]"``).

Task ids are EnvPool's Atari ids (``Pong-v5``, ``Breakout-v5``, ``Frostbite-v5``, ...).
Observations are uint8 ``[B, 4, 84, 84]`` frames, actions discrete (``spec.num_actions``
of the game's minimal action set; an integer ``[B]`` or ``[B, 1]`` tensor). One engine step
is one agent step: ``frame_skip`` emulator frames. The preprocessing is DQN's (Mnih et al.
2015), which the Deep GA paper uses, and each choice is an option (``make_engine`` keyword):

* ``frame_skip=4``: each action is repeated for 4 frames, rewards summed, and the
  observation is the pixel-wise max of the last two frames (Atari sprites flicker);
* ``img_height=img_width=84``, ``gray_scale=True``: the screen's luminance resized to 84 x 84
  (area interpolation, as Gymnasium's ``AtariPreprocessing``);
* ``stack_num=4``: the last 4 observations stacked as channels;
* ``noop_max=30``: each episode starts with k ~ U{1, ..., 30} no-op agent steps (each of
  ``frame_skip`` frames), drawn from the engine's generator. EnvPool's own no-op starts
  draw from per-environment generators seeded once when the pool is built (seconds for
  hundreds of emulators), so ``reset(seed)`` could not reproduce them; with its no-ops off
  the emulator is deterministic, and the engine's draws make ``reset(seed)`` reproducible
  on any pool. ``noop_max=0`` turns them off;
* ``repeat_action_probability=0.0``: no sticky actions (the deterministic ALE of DQN and
  the Deep GA paper; Gymnasium's v5 default is 0.25);
* ``use_fire_reset=False``, ``episodic_life=False``, ``reward_clip=False``: an episode is
  a whole game and its return the game score (DQN's life-loss and reward clipping are
  training aids for Q-learning, not the scored task);
* time limit: 27,000 agent steps (108,000 frames, EnvPool's and Gymnasium's default),
  counted by the engine (``max_episode_steps``, in agent steps; the Deep GA paper's cap of
  5,000 is its ``horizon``). The engine's ``dt`` is ``frame_skip / 60`` s.

EnvPool cannot read or write emulator states: ``get_state``/``set_state`` (and so state
cloning, ``rollout(init_state=...)``, true-model planning) raise
:class:`~rlwb.engine.gym_backend.StateNotSupportedError`; a rollout leaves the members at
its end, and the next ``step`` needs a ``reset()``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlwb.engine.base import Engine
from rlwb.engine.gym_backend import StateNotSupportedError
from rlwb.errors import ActionError, ConfigError, UnknownTaskError

FRAMES_PER_SECOND = 60.0  # the Atari 2600's frame rate
NOOP = 0  # action 0 is NOOP in every game's minimal action set
_NO_LIMIT = 2**30  # EnvPool's own time limit: off (the engine truncates)


@functools.cache
def atari_ids() -> tuple[str, ...]:
    """EnvPool's Atari task ids (empty without EnvPool)."""
    try:
        from envpool.registration import registry
    except ImportError:
        return ()
    return tuple(sorted(k for k, v in registry.specs.items() if v[0] == "envpool.atari"))


def is_atari_id(task: str) -> bool:
    """Whether ``task`` names an Atari game as EnvPool spells it (``Pong-v5``)."""
    return task in atari_ids()


class EnvpoolEngine(Engine):
    """``num_envs`` Atari emulators of one game in one EnvPool (see the module docstring)."""

    backend = "envpool"
    _steps_subsets = True

    @classmethod
    def available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        try:
            import envpool  # noqa: F401
        except ImportError as exc:
            return False, f"envpool is not installed ({exc}): pip install 'rlwb[atari]'"
        return True, ""

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: torch.device | str | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        num_threads: int = 0,
        frame_skip: int = 4,
        noop_max: int = 30,
        stack_num: int = 4,
        img_height: int = 84,
        img_width: int = 84,
        gray_scale: bool = True,
        repeat_action_probability: float = 0.0,
        full_action_space: bool = False,
        use_fire_reset: bool = False,
        episodic_life: bool = False,
        reward_clip: bool = False,
    ) -> None:
        import envpool

        if task not in atari_ids():
            raise UnknownTaskError(
                f"{task!r} is not an EnvPool Atari id (e.g. Pong-v5, Breakout-v5, "
                f"Frostbite-v5, Seaquest-v5; {len(atari_ids())} games in envpool.list_all_envs())"
            )
        if isinstance(noop_max, bool) or not isinstance(noop_max, int) or noop_max < 0:
            raise ConfigError(f"noop_max must be an int >= 0, got {noop_max!r}")
        self.task_id, self.num_envs, self.dtype = task, num_envs, dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.noop_max = noop_max
        threads = num_threads or min(num_envs, os.cpu_count() or 1)
        try:
            self._pool = envpool.make_gymnasium(
                task, num_envs=num_envs, batch_size=num_envs, num_threads=threads,
                seed=0, max_episode_steps=_NO_LIMIT, noop_max=1, frame_skip=frame_skip,
                stack_num=stack_num, img_height=img_height, img_width=img_width,
                gray_scale=gray_scale, repeat_action_probability=repeat_action_probability,
                full_action_space=full_action_space, use_fire_reset=use_fire_reset,
                episodic_life=episodic_life, reward_clip=reward_clip,
            )  # fmt: skip
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"bad EnvPool option for {task!r}: {exc}") from exc
        self.num_actions = int(self._pool.action_space.n)
        self.single_observation_space = self._pool.observation_space
        self.single_action_space = gym.spaces.Box(0.0, self.num_actions - 1.0, (1,), np.float32)
        self.max_episode_steps = -(-108_000 // frame_skip)
        self.dt = frame_skip / FRAMES_PER_SECOND
        self._ids = np.arange(num_envs, dtype=np.int32)
        self._init_bookkeeping(seed)
        self.spec = dataclasses.replace(
            self.spec, observation_dtype=torch.uint8, num_actions=self.num_actions
        )

    # ------------------------------------------------------------------ actions
    def check_action(self, action: Any, shape: tuple[int, int]) -> torch.Tensor:
        """Discrete actions as int64 ``[B, 1]``: integers in ``[0, num_actions)``, given as
        ``[B]`` or ``[B, 1]`` (float tensors holding whole numbers are accepted)."""
        if isinstance(action, np.ndarray):
            action = torch.from_numpy(action)
        if not isinstance(action, torch.Tensor):
            raise ActionError(
                f"action must be an integer tensor of shape ({shape[0]},) or {shape}, got "
                f"{type(action).__name__}"
            )
        if action.shape not in ((shape[0],), tuple(shape)):
            raise ActionError(
                f"action must have shape ({shape[0]},) or {tuple(shape)} for {self.task_id} "
                f"(discrete, {self.num_actions} actions), got {tuple(action.shape)}"
            )
        action = action.detach().reshape(shape[0], 1).cpu()
        if action.dtype.is_floating_point:
            if not bool((action == action.round()).all()):
                raise ActionError(
                    f"{self.task_id} has discrete actions: got non-integer values "
                    f"{action[action != action.round()][:5].tolist()}"
                )
            action = action.to(torch.int64)
        elif action.dtype.is_complex or action.dtype == torch.bool:
            raise ActionError(f"action must be an integer tensor, got dtype {action.dtype}")
        action = action.to(torch.int64)
        if len(action) and (int(action.min()) < 0 or int(action.max()) >= self.num_actions):
            raise ActionError(
                f"{self.task_id} actions must lie in [0, {self.num_actions}), got values in "
                f"[{int(action.min())}, {int(action.max())}]"
            )
        return action.to(self.device)

    # ------------------------------------------------------------------ primitives
    def _step_ids(self, action: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """EnvPool step of the emulators ``ids``; rows in the order of ``ids``."""
        obs, reward, term, _, info = self._pool.step(action, ids)
        rows = self._rows_of(info["env_id"], ids)
        if rows is not None:
            obs, reward, term = obs[rows], reward[rows], term[rows]
        return obs, reward, term

    def _rows_of(self, order: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
        """Rows of EnvPool's output (emulators in ``order``) that hold ``ids`` in their
        order; None when they already are."""
        if np.array_equal(order, ids):
            return None
        inverse = np.empty(self.num_envs, dtype=np.int64)
        inverse[order] = np.arange(len(order))
        return inverse[ids]

    def _reset_ids(self, ids: np.ndarray) -> np.ndarray:
        """Fresh episodes of the emulators ``ids`` with the engine's no-op starts."""
        obs, info = self._pool.reset(ids)
        rows = self._rows_of(info["env_id"], ids)
        obs = obs if rows is None else obs[rows]
        if self.noop_max == 0:
            return obs
        obs = obs.copy()
        noops = torch.randint(1, self.noop_max + 1, (len(ids),), generator=self.generator)
        noops = noops.numpy()
        for k in range(1, int(noops.max()) + 1):
            rows = np.flatnonzero(noops >= k)
            step_obs, _, term = self._step_ids(np.full(len(rows), NOOP, np.int32), ids[rows])
            obs[rows] = step_obs
            if term.any():  # the game ended during the no-ops: start it again, no no-ops
                ended = rows[term.astype(bool)]
                noops[ended] = 0
                obs[ended] = self._pool.reset(ids[ended])[0]
        return obs

    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        ids = members.cpu().numpy().astype(np.int32)
        return torch.from_numpy(self._reset_ids(ids)).to(self.device)

    def _outputs(
        self, obs: np.ndarray, reward: np.ndarray, term: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        reward_t = torch.from_numpy(reward.astype(np.float64)).to(self.dtype)
        term_t = torch.from_numpy(term.astype(bool))
        return torch.from_numpy(obs).to(self.device), reward_t.to(self.device), \
            term_t.to(self.device), {}  # fmt: skip

    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        act = action.reshape(-1).cpu().numpy().astype(np.int32)
        return self._outputs(*self._step_ids(act, self._ids))

    def _step_some(
        self, action: torch.Tensor, members: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        act = action.reshape(-1).cpu().numpy().astype(np.int32)
        return self._outputs(*self._step_ids(act, members.cpu().numpy().astype(np.int32)))

    def _get_physics_state(self) -> torch.Tensor:
        raise self._no_states()

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        raise self._no_states()

    def _no_states(self) -> StateNotSupportedError:
        return StateNotSupportedError(
            f"the envpool backend cannot read or set emulator states ({self.task_id}): no "
            "get_state/set_state, state cloning or rollout(init_state=...); reset(seed) "
            "reproduces start states"
        )

    def state_dict(self) -> dict[str, Any]:
        """The generator only: emulator states cannot be saved; a loaded engine resets."""
        return {"backend": self.backend, "task_id": self.task_id,
                "generator": self.generator.get_state()}  # fmt: skip

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if saved.get("task_id") != self.task_id or saved.get("backend") != self.backend:
            raise ValueError(
                f"engine state is for {saved.get('task_id')!r} on backend "
                f"{saved.get('backend')!r}, not {self.task_id!r} on {self.backend!r}"
            )
        self.generator.set_state(saved["generator"])
        self._obs = None

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
            self._pool = None


def gymnasium_twin(
    task: str,
    render_mode: str | None = None,
    frame_skip: int = 4,
    stack_num: int = 4,
    img_height: int = 84,
    img_width: int = 84,
    gray_scale: bool = True,
    repeat_action_probability: float = 0.0,
    full_action_space: bool = False,
    **_engine_only: Any,
) -> gym.Env:
    """Gymnasium's env that gives this backend's observations: ``ALE/<game>-v5`` (frame skip
    1, the same sticky actions and action set) in ``AtariPreprocessing`` (frame skip, max of
    the last two frames, area resize, grey, ``noop_max=1``: the one no-op frame EnvPool
    always runs at reset) and a ``FrameStackObservation``. Equal frames, rewards and
    terminations to an engine with ``noop_max=0`` for the same actions, except the frame of
    the step that ends the game (tests/test_atari_engine.py). Videos render through it;
    ``render_fps`` is one frame per agent step. Needs ``ale-py`` and ``opencv-python``."""
    import ale_py
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gym.register_envs(ale_py)
    raw = gym.make(f"ALE/{task}", frameskip=1, render_mode=render_mode,
                   repeat_action_probability=repeat_action_probability,
                   full_action_space=full_action_space)  # fmt: skip
    env = FrameStackObservation(
        AtariPreprocessing(raw, noop_max=1, frame_skip=frame_skip, terminal_on_life_loss=False,
                           screen_size=(img_width, img_height), grayscale_obs=gray_scale,
                           scale_obs=False),
        stack_num,
    )  # fmt: skip
    env.metadata = {**env.metadata, "render_fps": round(FRAMES_PER_SECOND / frame_skip)}
    return env
