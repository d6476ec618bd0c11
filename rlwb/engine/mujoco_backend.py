"""The ``mujoco`` backend: native MuJoCo on a persistent pool of CPU threads.

Every member's full physics state lives in one ``[B, S]`` numpy array; each thread owns one
``MjData`` and, per member, loads the state (``mj_setState``), writes ``ctrl``, runs
``frame_skip`` ``mj_step``s (plus ``mj_rnePostConstraint`` where the task reads
``cfrc_ext``), saves the state back and copies the fields the task reads into preallocated
numpy buffers that torch shares (``torch.from_numpy``). The task's math then runs once per
batch: in numpy on those buffers when the task is written for both libraries
(``numpy_math``, all Gymnasium MuJoCo tasks; numpy's per-op cost is a fraction of torch's
at the batch sizes a CPU simulates, and the numbers are Gymnasium's own numpy arithmetic),
else in torch on tensors that share them; either way the outputs are new torch tensors.
``mj_step`` releases the GIL, so the threads run in parallel; members are handed
out in blocks from a shared counter, so a thread slowed by other load takes fewer.

Why a state array and per-thread MjData rather than one MjData per member: the swap is exact
(the saved state includes the solver warm start; parity tests check Gymnasium's qpos/qvel
bit for bit), the hot MjData stays in cache, engines of thousands of members are cheap to
build (an MjData reserves megabytes) and ``get_state`` is a copy. Why not
``mujoco.rollout.Rollout`` for single steps: it neither returns the warm start (the next
step would start cold, breaking exact parity with Gymnasium) nor derived quantities such as
``xpos``/``cfrc_ext`` that observations need. Open-loop ``rollout`` calls take a faster
path: each thread runs its members through the whole horizon in one go.

State (``get_state``): see :mod:`rlwb.engine.mujoco_state` (``mj_getState`` with
``mjSTATE_FULLPHYSICS | mjSTATE_WARMSTART | mjSTATE_CTRL``, then elapsed steps). Including
the warm start makes a clone continue *bit-identically* to the member it was copied from
(without it, the constraint solver starts from another guess and trajectories drift apart
at solver tolerance); including the control makes the loaded member observe what its
source observed. ``set_state`` runs ``mj_forward`` (and ``mj_rnePostConstraint`` where the
task reads ``cfrc_ext``), so the returned observation is computed from the loaded state
(Gymnasium's observation after a step reads some quantities, e.g. ``xpos``, from before
the last integration, so it can differ slightly from this one; the next step's physics is
identical).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch

from rlwb import tasks
from rlwb.engine import mujoco_state
from rlwb.engine.base import Engine
from rlwb.engine.mujoco_state import STATE_SPEC, actuation_disabled
from rlwb.engine.mujoco_workers import (
    ForkedWorkers,
    process_workers_available,
    shared_zeros,
    split_bounds,
)
from rlwb.engine.pixels import (
    MemberRenderer,
    PixelOptions,
    RendererPool,
    make_camera,
    render_workers_allowed,
)
from rlwb.envs.mujoco.base import KNOWN_FIELDS, MujocoTask, load_model
from rlwb.errors import ActionError, BackendUnavailableError, ConfigError

# One mj_setState loads a member completely; qpos/qvel/ctrl are read from the state row.
INTERNAL_SPEC = STATE_SPEC
_STATE_PARTS = ("qpos", "qvel", "ctrl")
MEMBERS_PER_THREAD = 8  # below this many members per thread, threading costs more than it saves
BLOCKS_PER_THREAD = 4  # blocks handed out dynamically per thread (load balance vs. overhead)
PIPELINE_PIECES = 4  # pieces of an overlapped policy-and-physics step (see _act_and_advance)


class _Call:
    """One ``ThreadPool.map``: its blocks, the shared block counter and the helpers that
    are working on it (``active``), so the caller waits only for those."""

    def __init__(self, fn: Callable[[Any, int], None], blocks: Sequence[Any]) -> None:
        self.fn, self.blocks, self.n = fn, blocks, len(blocks)
        self.counter = itertools.count()
        self.done = threading.Condition(threading.Lock())
        self.active = 0
        self.error: BaseException | None = None

    def drain(self, slot: int) -> None:
        fn, blocks, n = self.fn, self.blocks, self.n
        for k in self.counter:
            if k >= n:
                return
            fn(blocks[k], slot)

    def help(self, slot: int) -> None:
        """A helper's share: join (counted as active), take blocks until none are left."""
        with self.done:
            self.active += 1
        try:
            self.drain(slot)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            self.error = self.error or exc
            for k in self.counter:  # take the remaining blocks: the call stops here
                if k >= self.n:
                    break
        finally:
            with self.done:
                self.active -= 1
                if not self.active:
                    self.done.notify_all()


class ThreadPool:
    """Persistent workers that, with the caller, drain a list of blocks of members.

    Blocks are handed out dynamically (``next`` on a shared ``itertools.count`` is atomic
    under the GIL), so a thread slowed down by other load on a shared machine simply takes
    fewer blocks. Hand-offs go through ``queue.SimpleQueue`` (C-level, microseconds), one per
    helper thread per call, never a thread start. The caller waits only for helpers that
    joined the call before it ran out of blocks: on a loaded machine a helper can take
    milliseconds to be scheduled, and when the caller has done every block by then, waiting
    for it to wake only to find nothing left made a 2-thread step slower than a 1-thread
    one. A late helper then finds its call's counter exhausted and returns.
    """

    def __init__(self, num_threads: int) -> None:
        self.num_threads = max(1, int(num_threads))
        self._jobs: list[queue.SimpleQueue] = []
        self._threads: list[threading.Thread] = []
        for k in range(self.num_threads - 1):
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._work, args=(jobs, k + 1), daemon=True, name=f"rlwb-mj-{k}"
            )
            thread.start()
            self._jobs.append(jobs)
            self._threads.append(thread)

    @staticmethod
    def _work(jobs: queue.SimpleQueue, slot: int) -> None:
        while True:
            call = jobs.get()
            if call is None:
                return
            call.help(slot)

    def map(self, fn: Callable[[Any, int], None], blocks: Sequence[Any]) -> None:
        """Run ``fn(block, slot)`` on every block, spread over the threads, and wait for all.
        ``slot`` (0 for the caller, 1.. for workers) names the thread, for per-thread data."""
        call = _Call(fn, blocks)
        for jobs in self._jobs[: min(len(self._jobs), len(blocks) - 1)]:
            jobs.put(call)
        try:
            call.drain(0)
        except BaseException as exc:  # noqa: BLE001 - raised once the helpers are out
            call.error = exc
            for k in call.counter:  # the helpers stop after their current block
                if k >= call.n:
                    break
        with call.done:
            while call.active:
                call.done.wait()
        if call.error is not None:
            raise call.error

    def close(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._jobs, self._threads = [], []


def _split(members: Sequence[int], parts: int) -> list[Sequence[int]]:
    """Contiguous, nearly equal chunks (no empty ones): the same bounds the forked workers
    use for their blocks."""
    n = len(members)
    return [members[lo:hi] for lo, hi in split_bounds(n, max(1, min(parts, n)))]


class MujocoEngine(Engine):
    """Batched native MuJoCo: a state per member, stepped by a thread pool.

    Backend options: ``num_threads`` (default: the CPU count, but at least 8 members per
    thread) and ``workers``: who runs the closed-loop steps next to the caller, ``"process"``
    (forked workers, :mod:`rlwb.engine.mujoco_workers`: no GIL shared, ~1.8x the threads'
    speed at 16-64 members), ``"thread"`` (the pool's threads) or ``"auto"`` (processes
    where they are available: Linux). Resets, ``set_state`` and open-loop rollouts
    always use the threads. ``definition`` is the built task (``make_engine`` passes it);
    without it, every other keyword goes to the task (Gymnasium's constructor arguments).
    """

    backend = "mujoco"

    @classmethod
    def available(cls, device: torch.device | None = None) -> tuple[bool, str]:
        if device is not None and device.type != "cpu":
            return False, f"the mujoco backend runs on the CPU, not {device}"
        return True, ""

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        num_threads: int | None = None,
        workers: str = "auto",
        definition: MujocoTask | None = None,
        **task_kwargs: Any,
    ) -> None:
        dev = torch.device("cpu") if device is None else torch.device(device)
        if dev.type != "cpu":
            raise ConfigError(
                f"the mujoco backend runs on the CPU; got device={dev} (use backend='warp')"
            )
        if definition is None:
            entry = tasks.get(task)
            if "mujoco" not in entry.backends:
                raise BackendUnavailableError(f"task {task!r} has no MuJoCo definition")
            definition = tasks.build_task(entry, task_kwargs, ["num_threads", "workers"])
        self.task, self.model = definition, load_model(task, definition)
        self.task_id, self.num_envs, self.device, self.dtype = task, int(num_envs), dev, dtype
        self.frame_skip = int(self.task.frame_skip)
        self.dt = float(self.model.opt.timestep * self.frame_skip)
        self.max_episode_steps = self.task.max_episode_steps
        self.init_qpos = torch.from_numpy(self.model.qpos0.copy())
        self.init_qvel = torch.zeros(self.model.nv, dtype=torch.float64)
        self._rne = self.task.needs_rne_post
        self._sync = self.task.sync_after_step  # dm_control tasks: mj_step1 after stepping

        self._threads_given = num_threads
        if num_threads is None:
            num_threads = min(os.cpu_count() or 1, max(1, self.num_envs // MEMBERS_PER_THREAD))
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ConfigError(f"num_threads must be an integer >= 1, got {num_threads!r}")
        forked = self._use_processes(workers, min(num_threads, self.num_envs))
        zeros = shared_zeros if forked else np.zeros  # workers see the states and fields

        names = list(dict.fromkeys(self.task.fields + self.task.pre_fields))
        unknown = [n for n in names if n not in KNOWN_FIELDS]
        if unknown:
            raise ValueError(f"task {task!r} asks for unknown MjData fields {unknown}")
        probe = mujoco.MjData(self.model)
        self._shapes = {n: getattr(probe, n).shape for n in names}
        # every member's physics: the internal state rows; qpos, qvel, ctrl are views of them
        self._state = zeros((self.num_envs, mujoco.mj_stateSize(self.model, INTERNAL_SPEC)))
        parts = {n: self._state[:, mujoco_state.part(self.model, n)] for n in _STATE_PARTS}
        self._ctrl = parts["ctrl"]
        self._ctrl_t = torch.from_numpy(self._ctrl)
        self.state_size = mujoco.mj_stateSize(self.model, STATE_SPEC)
        # other fields are copied from MjData after each step into these buffers
        self._np = {
            n: zeros((self.num_envs, *shape))
            for n, shape in self._shapes.items()
            if n not in _STATE_PARTS
        }
        self._gather = list(self._np.items())
        # the task's fields as numpy views of those buffers, and torch tensors sharing them
        self._np_view = {n: parts[n] if n in _STATE_PARTS else self._np[n] for n in names}
        self.view = {n: torch.from_numpy(a) for n, a in self._np_view.items()}
        self._numpy = bool(self.task.numpy_math)  # evaluate the task on the numpy views
        self._np_dtype = np.float32 if dtype == torch.float32 else np.float64

        self.pool = ThreadPool(min(num_threads, self.num_envs))
        self._chunks = self._blocks(self.num_envs)
        # One MjData per thread, not per member: a member's state is swapped in and out
        # (mj_setState/mj_getState, exact), which keeps the hot MjData in cache, makes
        # engines of thousands of members cheap to build and get_state a copy.
        mujoco.mj_forward(self.model, probe)
        mujoco.mj_getState(self.model, probe, self._state[0], INTERNAL_SPEC)
        self._state[:] = self._state[0]  # the model's default state until the first reset
        self._qpos, self._qvel = parts["qpos"], parts["qvel"]
        reads_state_only = not self._gather and not self._rne and not self._sync
        self._reset_row = self._state[0].copy() if reads_state_only else None
        self._slot_data = [probe] + [
            mujoco.MjData(self.model) for _ in range(self.pool.num_threads - 1)
        ]

        obs_dim = self.task.observation_dim(self.model)
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np_dtype)
        low, high = self.model.actuator_ctrlrange.copy().astype(np.float32).T
        self.single_action_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self._init_bookkeeping(seed)
        self._all_list = list(range(self.num_envs))
        self._workers = (
            ForkedWorkers(self._step_chunk, self.num_envs, self.pool.num_threads - 1)
            if forked
            else None
        )

    def _use_processes(self, workers: str, threads: int) -> bool:
        """Whether closed-loop steps go to forked workers (see the class docstring)."""
        if workers not in ("auto", "process", "thread"):
            raise ConfigError(f"workers must be 'auto', 'process' or 'thread', got {workers!r}")
        ok, why = process_workers_available()
        if workers == "process" and not ok:
            raise ConfigError(f"workers='process' is not available here: {why}")
        blocks = min(threads, max(1, self.num_envs // MEMBERS_PER_THREAD))
        return workers != "thread" and ok and blocks > 1

    def _run_steps(self, blocks: list[Any], members: list[int] | None) -> None:
        """Step the members in ``blocks`` (all members when ``members`` is None, else
        those listed) with this step's controls, on the workers or the thread pool."""
        if len(blocks) == 1:
            self._step_chunk(blocks[0], 0)
        elif self._workers is not None:
            self._workers.run(self._all_list if members is None else members, len(blocks))
        else:
            self.pool.map(self._step_chunk, blocks)

    def _act_and_advance(
        self,
        policy: Any,
        obs: torch.Tensor,
        acting: torch.Tensor | None,
        live: torch.Tensor | None,
    ) -> tuple[torch.Tensor, ...]:
        """With forked workers and a population policy (``act_some``: rows independent),
        overlap the policy with the physics: the stepped members are cut into up to
        :data:`PIPELINE_PIECES` pieces; the caller computes piece k's actions and hands its
        physics to the workers, which simulate it while the caller computes piece k + 1's,
        and all join the last piece. The workers wait only for the first piece's actions
        (1/pieces of the forward; with two pieces they would idle for half of it). Same
        numbers as acting on every member first (each member's action and physics are the
        same computations)."""
        stepped = self._all_members if live is None else live
        if (
            self._workers is None
            or self._pixels is not None
            or self.action_repeat != 1
            or not hasattr(policy, "act_some")
            or len(self._blocks(len(stepped))) < 2 * self.pool.num_threads
        ):
            return super()._act_and_advance(policy, obs, acting, live)
        index = stepped.tolist()
        view = self._members_view(stepped)
        pre = self._pre_fields(view)
        spread = MEMBERS_PER_THREAD * self.pool.num_threads  # a piece still uses every core
        pieces = torch.tensor_split(stepped, max(2, min(PIPELINE_PIECES, len(index) // spread)))
        wanted = self._all_members if acting is None else acting
        act = obs.new_zeros((self.num_envs, self.action_dim), dtype=self.dtype)
        workers, started = self._workers, False
        try:
            for piece in pieces:
                rows = piece[torch.isin(piece, wanted)] if acting is not None else piece
                if len(rows):
                    some = policy.act_some(obs[rows], rows, self.num_envs)
                    act[rows] = self.check_action(some, (len(rows), self.action_dim))
                members = piece.tolist()
                self._ctrl[members] = act[piece].numpy()
                blocks = len(self._blocks(len(members)))
                if started:
                    workers.extend(members, blocks)
                else:
                    workers.start(members, blocks)
                    started = True
        finally:
            if started:
                workers.finish()
        out = self._evaluate(pre, self._members_view(stepped), act[stepped])
        if live is None:
            return (act, *out)
        return (act, *self._widen(out, stepped, obs))

    # ------------------------------------------------------------------ pixels
    @classmethod
    def render_refusal(cls) -> str:
        return ""

    def _setup_rendering(self, options: PixelOptions) -> None:
        """Renderers for pixel observations (see :mod:`rlwb.engine.pixels`) on ``num_threads``
        cores (default: one per CPU, at most one per member; a frame costs milliseconds, so
        even two members pay for two cores): forked render workers beside the caller where
        :func:`render_workers_allowed`, else threads of this process (which Mesa's software
        rasterizer runs one at a time)."""
        camera = options.camera if options.camera is not None else self.task.render_camera()
        make_camera(self.model, camera)  # a camera the model lacks is one error line here
        size = options.image_size
        threads = self._threads_given or min(os.cpu_count() or 1, self.num_envs)
        threads = min(threads, self.num_envs)
        model, task = self.model, self.task
        self._renderers = RendererPool(
            lambda: MemberRenderer(model, size, camera, INTERNAL_SPEC, task)
        )
        forked = threads > 1 and process_workers_available()[0] and render_workers_allowed()[0]
        self._frames = (shared_zeros if forked else np.zeros)(
            (self.num_envs, size, size, 3), np.uint8
        )
        # the state rows renderers read: the engine's own, unless render workers are forked
        # while those rows are private (no simulation workers): then a shared staging copy
        private = forked and self._workers is None
        self._render_states = shared_zeros(self._state.shape) if private else self._state
        same = forked or threads == self.pool.num_threads
        self._render_pool = self.pool if same else ThreadPool(threads)
        self._render_workers = (
            ForkedWorkers(self._render_chunk, self.num_envs, threads - 1, "render")
            if forked
            else None
        )  # forked before this process's own context: see render_workers_allowed
        self._renderers.get()  # a GL context that cannot start is one error line, now

    def _render_chunk(self, members: Sequence[int], slot: int) -> None:
        """Render ``members``' staged state rows into their frames (any process)."""
        renderer, states, frames = self._renderers.get(), self._render_states, self._frames
        for i in members:
            renderer.render(states[i], frames[i])

    def _render_members(self, members: torch.Tensor) -> torch.Tensor:
        index = members.tolist()
        if self._render_states is not self._state:
            self._render_states[index] = self._state[index]
        threads = min(self._render_pool.num_threads, len(index))
        if self._render_workers is not None and len(index) > 1:
            self._render_workers.run(index, len(index))  # one member per block
        elif threads <= 1:
            self._render_chunk(index, 0)
        else:  # one member per block: a frame costs far more than handing out a block
            self._render_pool.map(self._render_chunk, [index[k : k + 1] for k in range(len(index))])
        return torch.from_numpy(self._frames[index]).permute(0, 3, 1, 2)

    # ------------------------------------------------------------------ workers
    def _step_chunk(self, members: range, slot: int) -> None:
        model, data, gather = self.model, self._slot_data[slot], self._gather
        states, nstep, rne, sync = self._state, self.frame_skip, self._rne, self._sync
        step, rne_post = mujoco.mj_step, mujoco.mj_rnePostConstraint
        get_state, set_state = mujoco.mj_getState, mujoco.mj_setState
        for i in members:
            set_state(model, data, states[i], INTERNAL_SPEC)  # state and this step's control
            step(model, data, nstep)
            if sync:
                mujoco.mj_step1(model, data)
            if rne:
                rne_post(model, data)
            get_state(model, data, states[i], INTERNAL_SPEC)
            for name, buf in gather:
                buf[i] = getattr(data, name)

    def _store_member(self, i: int, data: mujoco.MjData) -> None:
        """Save member ``i``'s state and the task's fields from ``data``."""
        mujoco.mj_getState(self.model, data, self._state[i], INTERNAL_SPEC)
        for name, buf in self._gather:
            buf[i] = getattr(data, name)

    def _members_view(self, members: torch.Tensor) -> dict[str, Any]:
        """The task's fields of ``members``, in the library the task is evaluated in."""
        view = self._np_view if self._numpy else self.view
        n = self.num_envs
        if len(members) == n and (n == 1 or torch.equal(members, self._all_members)):
            return view
        index = members.numpy() if self._numpy else members
        return {n: v[index] for n, v in view.items()}

    def _pre_fields(self, view: dict[str, Any]) -> dict[str, Any]:
        """Copies of the pre-step fields the task's reward needs (stepping overwrites them)."""
        if self._numpy:
            return {n: view[n].copy() for n in self.task.pre_fields}
        return {n: view[n].clone() for n in self.task.pre_fields}

    def _out(self, x: Any) -> torch.Tensor:
        """A task output as a new tensor in the engine's dtype (bool stays bool)."""
        if isinstance(x, np.ndarray):
            dtype = bool if x.dtype == np.bool_ else self._np_dtype
            return torch.from_numpy(x.astype(dtype))
        return x.clone() if x.dtype == torch.bool else x.to(self.dtype, copy=True)

    def _observe(self, members: torch.Tensor) -> torch.Tensor:
        """The observation of ``members`` from their gathered fields."""
        return self._out(self.task.observation(self._members_view(members)))

    # ------------------------------------------------------------------ primitives
    def _reset_members(self, members: torch.Tensor) -> torch.Tensor:
        if self._numpy:  # numpy_math tasks draw their reset in numpy (same draws, no torch ops)
            init: tuple[Any, Any] = (self.init_qpos.numpy(), self.init_qvel.numpy())
        else:
            init = (self.init_qpos, self.init_qvel)
        drawn = [np.asarray(x) for x in self.task.reset_state(*init, len(members), self.generator)]
        qpos_np, qvel_np = drawn[0], drawn[1]
        if self._reset_row is not None and len(drawn) == 2:
            # the task reads nothing but the state: a reset state is the template row with
            # the drawn qpos/qvel (what mj_resetData + mj_forward + mj_getState give, since
            # mj_forward changes no state component), written for all members at once
            rows = members.numpy()
            self._state[rows] = self._reset_row
            self._qpos[rows] = qpos_np
            self._qvel[rows] = qvel_np
            return self._observe(members)
        userdata_np = drawn[2] if len(drawn) > 2 else None  # dm_control tasks' per-episode state
        act_np = drawn[3] if len(drawn) > 3 else None
        index = members.tolist()
        model = self.model

        def reset_chunk(ks: Sequence[int], slot: int) -> None:
            data = self._slot_data[slot]
            for k in ks:
                mujoco.mj_resetData(model, data)  # as Gymnasium's reset: ctrl, warm start zeroed
                data.qpos[:] = qpos_np[k]
                data.qvel[:] = qvel_np[k]
                if userdata_np is not None:
                    data.userdata[:] = userdata_np[k]
                if act_np is not None:
                    data.act[:] = act_np[k]
                mujoco.mj_forward(model, data)
                self._store_member(index[k], data)

        with actuation_disabled(model.opt, self.task.forward_without_actuation):
            self._run(reset_chunk, len(index))
        return self._observe(members)

    def _run(self, fn: Callable[[Sequence[int], int], None], n: int) -> None:
        """Run ``fn(block, slot)`` over positions ``0..n-1``: threaded for big batches."""
        blocks = self._blocks(n)
        if len(blocks) == 1:
            fn(blocks[0], 0)
        else:
            self.pool.map(fn, blocks)

    def _blocks(self, n: int) -> list[range]:
        """Blocks of positions ``0..n-1`` for the pool: one block when threads would not pay
        off, else several per thread for dynamic load balancing."""
        threads = min(self.pool.num_threads, max(1, n // MEMBERS_PER_THREAD))
        if threads == 1:
            return [range(n)]
        return _split(range(n), min(n, threads * BLOCKS_PER_THREAD))

    def _step_members(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        view = self._np_view if self._numpy else self.view
        pre = self._pre_fields(view)
        if self._numpy:
            act: Any = (action.detach() if action.requires_grad else action).numpy()
            self._ctrl[:] = act
        else:
            self._ctrl_t.copy_(action)
        self._run_steps(self._chunks, None)
        return self._evaluate(pre, view, act if self._numpy else action)

    _steps_subsets = True

    def _step_some(
        self, action: torch.Tensor, members: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step only ``members`` (rollouts skip members that have ended): the same worker
        loop over a list of member indices, the task evaluated on their gathered rows."""
        pre = self._pre_fields(self._members_view(members))
        index = members.tolist()
        self._ctrl[index] = action.detach().numpy()
        blocks = [index[b.start : b.stop] for b in self._blocks(len(index))]
        self._run_steps(blocks, index)
        return self._evaluate(pre, self._members_view(members), action)

    def _evaluate(
        self, pre: dict[str, Any], post: dict[str, Any], action: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The task's math on the gathered fields (numpy or torch, as the views are; the
        action as a tensor or, for numpy, an array), outputs as new tensors in the engine's
        dtype."""
        if not self._numpy:
            action64 = action.to(torch.float64)
            obs, reward, terminated, info = self.task.evaluate(pre, post, action64, self.task_dt)
            out = self._out
            return out(obs), out(reward), out(terminated), {k: out(v) for k, v in info.items()}
        if isinstance(action, torch.Tensor):
            action = action.detach().numpy()
        obs, reward, terminated, info = self.task.evaluate(
            pre, post, action.astype(np.float64), self.task_dt
        )
        # _out inlined: at one member these conversions are a third of the step's overhead
        dtype, tensor = self._np_dtype, torch.from_numpy
        reward, terminated = reward.astype(dtype), terminated.astype(bool)
        out_reward, out_terminated = tensor(reward), tensor(terminated)
        self._last_host = (out_reward, out_terminated, reward, terminated)
        return (
            tensor(obs.astype(dtype)),
            out_reward,
            out_terminated,
            {k: tensor(v.astype(dtype)) for k, v in info.items()},
        )

    _last_host: tuple[Any, ...] = (None, None, None, None)

    def _host_arrays(
        self, reward: torch.Tensor, terminated: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The numpy arrays :meth:`_evaluate` made these tensors from, if it did."""
        last = self._last_host
        if reward is last[0] and terminated is last[1]:
            return last[2], last[3]
        return super()._host_arrays(reward, terminated)

    def _get_physics_state(self) -> torch.Tensor:
        return torch.from_numpy(self._state.copy())

    def _physics_state_size(self) -> int:
        return self.state_size

    def _convert_state(self, state: torch.Tensor) -> torch.Tensor | None:
        return mujoco_state.convert_state(self.model, state)

    def _snapshot(self) -> Any:
        return self._state.copy(), {n: b.copy() for n, b in self._np.items()}, self._counters()

    def _restore(self, snapshot: Any) -> None:
        state, gathered, counters = snapshot
        self._state[:] = state
        for name, buf in gathered.items():
            self._np[name][:] = buf
        self._restore_counters(counters)

    def _set_physics_state(self, state: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        states = np.ascontiguousarray(state.detach().cpu().numpy(), dtype=np.float64)
        if states.shape[1] != self.state_size:
            raise ValueError(
                f"physics state must have {self.state_size} entries, got {states.shape[1]}"
            )
        index = members.tolist()
        model, rne = self.model, self._rne

        def load_chunk(ks: Sequence[int], slot: int) -> None:
            data = self._slot_data[slot]
            for k in ks:
                i = index[k]
                mujoco.mj_setState(model, data, states[k], STATE_SPEC)  # with its last ctrl
                mujoco.mj_forward(model, data)
                if rne:
                    mujoco.mj_rnePostConstraint(model, data)
                self._store_member(i, data)

        with actuation_disabled(model.opt, self.task.forward_without_actuation):
            self._run(load_chunk, len(index))
        return self._observe(members)

    # ------------------------------------------------------------------ open-loop rollout
    def _rollout_fast(
        self, actions: torch.Tensor, horizon: int, obs: torch.Tensor
    ) -> tuple[Any, ...] | None:
        """Open loop: each worker runs its members through the whole horizon in one go
        (one thread hand-off per rollout instead of one per step), recording the task's
        fields per step; the task then evaluates all N x H steps in one vectorized call.
        Same numbers as the stepping loop (every member is simulated for the whole
        horizon; ``rollout`` restores the engine afterwards)."""
        if horizon == 0:
            return None
        n, a = self.num_envs, self.action_dim
        if actions.dtype.is_floating_point and not bool(torch.isfinite(actions).all()):
            bad = (~torch.isfinite(actions)).flatten(1).any(1).nonzero().squeeze(1).tolist()
            raise ActionError(f"open-loop actions contain NaN or inf for members {bad[:10]}")
        acts = self.check_action(actions.reshape(n * horizon, a), (n * horizon, a))
        ctrl = np.ascontiguousarray(acts.detach().numpy().astype(np.float64).reshape(n, horizon, a))
        record = {name: np.empty((n, horizon + 1, *shape)) for name, shape in self._shapes.items()}
        for name, buf in record.items():
            buf[:, 0] = self._np_view[name]
        gathers = list(record.items())
        model, nstep, rne, states = self.model, self.frame_skip, self._rne, self._state
        sync = self._sync

        def run_chunk(members: Sequence[int], slot: int) -> None:
            step, rne_post = mujoco.mj_step, mujoco.mj_rnePostConstraint
            data = self._slot_data[slot]
            for i in members:
                mujoco.mj_setState(model, data, states[i], INTERNAL_SPEC)
                for t in range(horizon):
                    data.ctrl[:] = ctrl[i, t]
                    step(model, data, nstep)
                    if sync:
                        mujoco.mj_step1(model, data)
                    if rne:
                        rne_post(model, data)
                    for name, buf in gathers:
                        buf[i, t + 1] = getattr(data, name)

        if len(self._chunks) == 1:
            run_chunk(self._chunks[0], 0)
        else:
            self.pool.map(run_chunk, self._chunks)
        steps = n * horizon
        full = record if self._numpy else {k: torch.from_numpy(v) for k, v in record.items()}
        post = {k: v[:, 1:].reshape(steps, *v.shape[2:]) for k, v in full.items()}
        pre = {k: full[k][:, :-1].reshape(steps, *full[k].shape[2:]) for k in self.task.pre_fields}
        step_obs, reward, term, info = self._evaluate(pre, post, acts)
        return (
            step_obs.reshape(n, horizon, *step_obs.shape[1:]),
            reward.reshape(n, horizon),
            term.reshape(n, horizon),
            {k: v.reshape(n, horizon, *v.shape[1:]) for k, v in info.items()},
            acts.reshape(n, horizon, a),
        )

    def close(self) -> None:
        render_workers = getattr(self, "_render_workers", None)
        if render_workers is not None:
            render_workers.close()
        renderers = getattr(self, "_renderers", None)
        if renderers is not None:
            renderers.close()
        render_pool = getattr(self, "_render_pool", None)
        if render_pool is not None and render_pool is not getattr(self, "pool", None):
            render_pool.close()
        workers = getattr(self, "_workers", None)
        if workers is not None:
            workers.close()
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
