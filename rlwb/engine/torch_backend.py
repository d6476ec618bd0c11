"""The ``torch`` backend: analytic tasks (``rlwb.envs.classic``) advanced as one set of
tensor ops over all members, on any device, optionally differentiable and compiled.

The engine holds the ``[B, S]`` state tensor (column-major, see ``envs/classic/base.py``) of
a :class:`~rlwb.envs.classic.base.TorchTask` and calls its batched ``step``. ``step`` has the
base :class:`~rlwb.engine.base.Engine`'s semantics (autoreset, truncation, episode
statistics; a test compares the two exactly) with the bookkeeping fused into the same
function as the task's step; ``rollout`` is a graph-keeping version of the base loop.
Randomness (resets) comes from the engine's own ``torch.Generator`` on the engine's device,
so a run reproduces from its seed on one device. On a shared CPU prefer
``torch.set_num_threads(1)``: two OpenMP threads on a loaded 2-core machine ran 10-30x slower
(``benchmarks/RESULTS.md``).

Engine options (keyword arguments of ``make_engine`` next to the task's own):

* ``requires_grad=False`` -- keep the autograd graph through ``step``/``set_state``/
  ``rollout`` (call :meth:`TorchEngine.detach_state` to cut it, e.g. between episodes).
  ``rollout(..., differentiable=True)`` does the same for one rollout: the returns are then
  differentiable w.r.t. the action sequence, a closed-loop policy's parameters and
  ``init_state``. Each rollout starts a fresh graph (from ``init_state``, or from the
  engine's current state) and restores the engine afterwards, so a gradient-based planner
  can call it in a loop without ``detach_state``. Otherwise everything runs under
  ``torch.no_grad()``.
* ``compile=False`` -- ``True`` wraps the step (task and bookkeeping) in ``torch.compile``:
  one fused kernel per step, 2-3x faster for the maze at 16k+ members on CPU, no gain below
  ~1k (guard and call overhead). A string picks the compile mode; ``"reduce-overhead"`` adds
  CUDA-graph capture on GPU (outputs are cloned out of the graph's buffers; untested here,
  no GPU). The eager path is the reference.

Observations are flat ``[B, obs_dim]`` tensors; goal-conditioned tasks document their
``observation``/``achieved_goal``/``desired_goal`` slices (``rlwb.envs.classic.maze``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from rlwb import tasks
from rlwb.engine.base import Engine, Policy
from rlwb.engine.rollout import RolloutResult, repeat_step
from rlwb.envs.classic.base import TorchTask
from rlwb.errors import BackendUnavailableError, ConfigError


class TorchEngine(Engine):
    """A batch of ``num_envs`` members of one analytic torch task."""

    backend = "torch"

    @classmethod
    def available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        if device is not None and device.type == "cuda" and not torch.cuda.is_available():
            return False, "device is CUDA but torch.cuda.is_available() is False"
        return True, ""

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        compile: bool | str = False,  # noqa: A002 - mirrors torch.compile
        requires_grad: bool = False,
        definition: TorchTask | None = None,
        **task_kwargs: Any,
    ) -> None:
        if definition is None:
            entry = tasks.get(task)
            if "torch" not in entry.backends:
                raise BackendUnavailableError(f"task {task!r} has no torch definition")
            definition = tasks.build_task(entry, task_kwargs, ["compile", "requires_grad"])
        self.task: TorchTask = definition
        self.task_id, self.num_envs, self.dtype = task, int(num_envs), dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.task.bind(self.device, dtype)
        self.single_observation_space = self.task.observation_space()
        self.single_action_space = self.task.action_space()
        self.max_episode_steps = self.task.max_episode_steps
        self.dt = float(self.task.dt)
        self.requires_grad = bool(requires_grad)
        self._differentiable = False
        self._cudagraphs = compile == "reduce-overhead"
        self._compiled = compile not in (False, None)
        self._step_fn = _compiled(self.task.step, compile)
        self._fused_fn = _compiled(self._fused_step, compile)
        shape = (self.task.state_dim, self.num_envs)
        self.physics = torch.zeros(shape, device=self.device, dtype=dtype).T  # column-major
        self._init_bookkeeping(seed)

    def _generator_device(self) -> torch.device:
        return self.device

    @property
    def observation_slices(self) -> dict[str, slice] | None:
        """Named parts of the flat observation (goal tasks), or None; see ``rlwb.envs.classic``."""
        return self.task.obs_slices

    # ------------------------------------------------------------------ primitives
    def _put(self, members: torch.Tensor, rows: torch.Tensor) -> None:
        if members is self._all_members:
            self.physics = _column_major(rows)
        else:
            self.physics = _column_major(self.physics.index_put((members,), rows))

    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        rows = self.task.reset_state(len(members), self.generator)
        self._put(members, rows)
        return self.task.observation(rows)

    def _call(self, fn: Any, action: torch.Tensor, *args: torch.Tensor) -> tuple[Any, ...]:
        """Run the (possibly compiled) ``fn(state, action, *args)`` and store the new state."""
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        if self._compiled:  # contiguous action columns keep the compiled loops vectorized
            action = _column_major(action)
        out = fn(self.physics, action, *args)
        if self._cudagraphs:  # captured outputs are overwritten by the next replay
            out = tuple(
                {k: v.clone() for k, v in o.items()} if isinstance(o, dict) else o.clone()
                for o in out
            )
        self.physics = _column_major(out[0])
        return out

    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        _, obs, reward, terminated, components = self._call(self._step_fn, action)
        return obs, reward, terminated, dict(components)

    def _fused_step(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        elapsed: torch.Tensor,
        episode_return: torch.Tensor,
        episode_length: torch.Tensor,
    ) -> tuple[Any, ...]:
        """The task's step plus the base class's per-step bookkeeping, as one pure function
        (one fused kernel under ``torch.compile``)."""
        state, obs, reward, terminated, components = self._task_step(state, action)
        elapsed = elapsed + 1
        episode_return = episode_return + reward.to(torch.float64)
        episode_length = episode_length + 1
        if self.max_episode_steps is not None:
            truncated = (elapsed >= self.max_episode_steps) & ~terminated
        else:
            truncated = torch.zeros_like(terminated)
        done = terminated | truncated
        return (state, obs, reward, terminated, truncated, done, components,
                elapsed, episode_return, episode_length)  # fmt: skip

    def _task_step(self, state: torch.Tensor, action: torch.Tensor) -> tuple[Any, ...]:
        """``action_repeat`` task steps (``repeat_step``'s rule, without a host sync)."""
        if self.action_repeat == 1:
            return self.task.step(state, action)
        current = [state]

        def once(act: torch.Tensor) -> tuple[Any, ...]:
            current[0], *out = self.task.step(current[0], act)
            return tuple(out)

        obs, reward, terminated, components = repeat_step(
            once, action, self.action_repeat, early_exit=False
        )
        return current[0], obs, reward, terminated, components

    def _get_physics_state(self) -> torch.Tensor:
        return self.physics.to(torch.float64)

    def _physics_state_size(self) -> int:
        return self.task.state_dim

    def _snapshot(self) -> Any:
        return self.physics, self._counters()  # states are replaced, never written in place

    def _restore(self, snapshot: Any) -> None:
        self.physics, counters = snapshot
        self._restore_counters(counters)

    def _policy_context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self._differentiable else torch.no_grad()

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        rows = state.to(self.dtype)
        self._put(members, rows)
        return self.task.observation(rows)

    # ------------------------------------------------------------------ grad control
    def _grad(self) -> contextlib.AbstractContextManager:
        """Autograd on only where asked for; plain stepping never builds a graph."""
        if self.requires_grad or self._differentiable:
            return contextlib.nullcontext()
        return torch.no_grad()

    def detach_state(self) -> None:
        """Cut the autograd graph held in the state (for ``requires_grad=True`` engines)."""
        self.physics = self.physics.detach()
        if self._obs is not None:
            self._obs = self._obs.detach()

    def _own_counters(self) -> None:
        """Fresh counter tensors before the base class changes them in place."""
        self.elapsed = self.elapsed.clone()
        self.episode_return = self.episode_return.clone()
        self.episode_length = self.episode_length.clone()

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self._own_counters()
        with self._grad():
            return super().reset(seed)

    def step(self, action: torch.Tensor) -> tuple[Any, ...]:
        """``Engine.step``'s semantics exactly (tests compare the two), with the bookkeeping
        fused into the task's step: the base class's ~15 small ops per step would otherwise
        cost as much as a compiled task step at large batches."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        with self._grad():
            action = self.check_action(action, (self.num_envs, self.action_dim))
            out = self._call(
                self._fused_fn, action, self.elapsed, self.episode_return, self.episode_length
            )
            _, obs, reward, terminated, truncated, done, components, elapsed, ret, length = out
            info: dict[str, Any] = dict(components)
            info.update(done=done, final_obs=obs, episode_return=ret, episode_length=length)
            if bool(done.any()):
                members = done.nonzero().squeeze(1)
                obs = obs.clone()
                obs[members] = self._reset_members(members)
                elapsed, ret, length = (x.masked_fill(done, 0) for x in (elapsed, ret, length))
            # The info tensors may be the counters themselves: every later change to a
            # counter replaces the tensor (see _own_counters), so a returned info never changes.
            self.elapsed, self.episode_return, self.episode_length = elapsed, ret, length
            self._obs = obs
            return obs, reward, terminated, truncated, info

    def set_state(self, state: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        self._own_counters()
        with self._grad():
            return super().set_state(state, members)

    def rollout(
        self,
        actions: torch.Tensor | Policy,
        horizon: int | None = None,
        init_state: torch.Tensor | None = None,
        record_obs: bool = False,
        record_actions: bool = False,
        stop_on_truncation: bool = True,
        differentiable: bool | None = None,
    ) -> RolloutResult:
        """The base rollout plus ``differentiable`` (default: the engine's ``requires_grad``):
        keep the graph so ``result.returns`` can be back-propagated to ``actions`` (open
        loop), the policy's parameters (closed loop) and ``init_state``. Terminated members
        are masked with ``torch.where``, so their later steps contribute zero gradient. The
        engine is restored afterwards (as every backend's rollout), so the next rollout
        starts a fresh graph."""
        previous = self._differentiable
        self._differentiable = (
            self.requires_grad if differentiable is None else bool(differentiable)
        )
        try:
            with torch.enable_grad() if self._differentiable else torch.no_grad():
                return super().rollout(
                    actions, horizon, init_state, record_obs, record_actions, stop_on_truncation
                )
        finally:
            self._differentiable = previous


def _column_major(x: torch.Tensor) -> torch.Tensor:
    """``x [B, S]`` with each column contiguous (no copy when it already is)."""
    return x.T.contiguous().T


def _compiled(fn: Any, compile: bool | str) -> Any:  # noqa: A002
    """``torch.compile`` the task's step. Every engine compiles its own task instance (guards
    fail across instances and batch sizes), so Dynamo's default limit of 8 recompiles per
    function, after which it silently runs eager, is raised to 64."""
    if compile is False or compile is None:
        return fn
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, 64)
    if compile is True:
        return torch.compile(fn, dynamic=False)
    if isinstance(compile, str):
        return torch.compile(fn, dynamic=False, mode=None if compile == "default" else compile)
    raise ConfigError(f"compile must be a bool or a torch.compile mode string, got {compile!r}")
