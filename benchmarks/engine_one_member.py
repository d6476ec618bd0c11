"""One member: a closed-loop step of rlwb's ``mujoco`` engine against Gymnasium's
``SyncVectorEnv`` of one env, from the very same physics state, call by call.

``rlwb bench`` times each contender for a second of free-running episodes; on a shared,
loaded machine a burst of load lands on one cell and not the other, and the states the two
loops visit differ (physics cost depends on contacts). Here both start every timed call
from one saved state (``mj_setState`` / ``set_state``-like restores, timed alone and
subtracted), take the same policy action (the bench's 64-64 tanh MLP), and the parts take
turns call by call; the statistic is the minimum (or the 10th percentile) over many calls:
the cost when the process had the core.

    python benchmarks/engine_one_member.py --tasks HalfCheetah-v5 Hopper-v5 --calls 3000
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np
import torch
import tyro

from rlwb import make_engine
from rlwb.bench import _policy


@dataclass
class Args:
    tasks: list[str] = field(default_factory=lambda: ["HalfCheetah-v5", "Hopper-v5"])
    calls: int = 3000
    warm_steps: int = 100
    """Policy steps taken first, so both start from a typical running state."""


def _rlwb_parts(task: str, warm: int) -> dict[str, Callable[[], object]]:
    engine = make_engine(task, 1, backend="mujoco", seed=0, num_threads=1)
    obs = engine.reset()
    policy = _policy(engine.observation_shape[0], engine.action_dim)
    with torch.no_grad():
        for _ in range(warm):
            obs = engine.step(policy(obs))[0]
    state, elapsed, start_obs = engine._state.copy(), engine.elapsed.clone(), obs

    def restore() -> None:
        engine._state[:] = state
        engine.elapsed.copy_(elapsed)
        engine._obs = start_obs

    def step_with_policy() -> None:
        restore()
        with torch.no_grad():
            engine.step(policy(engine._obs))

    def physics() -> None:
        restore()
        engine._step_chunk(engine._chunks[0], 0)

    return {"restore": restore, "physics": physics, "step + policy": step_with_policy}


def _gym_parts(task: str, warm: int) -> dict[str, Callable[[], object]]:
    env = gym.vector.SyncVectorEnv([lambda: gym.make(task)], autoreset_mode="SameStep")
    obs, _ = env.reset(seed=0)
    policy = _policy(obs.shape[1], env.single_action_space.shape[0])
    for _ in range(warm):
        with torch.no_grad():
            action = policy(torch.from_numpy(np.asarray(obs, dtype=np.float32))).numpy()
        obs = env.step(action)[0]
    base = env.envs[0].unwrapped
    model, data = base.model, base.data
    spec = int(mujoco.mjtState.mjSTATE_FULLPHYSICS | mujoco.mjtState.mjSTATE_WARMSTART)
    spec |= int(mujoco.mjtState.mjSTATE_CTRL)
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    elapsed, start_obs = env.envs[0]._elapsed_steps, obs.copy()

    def restore() -> None:
        mujoco.mj_setState(model, data, state, spec)
        env.envs[0]._elapsed_steps = elapsed  # TimeLimit's counter

    def step_with_policy() -> None:
        restore()
        with torch.no_grad():
            action = policy(torch.from_numpy(np.asarray(start_obs, dtype=np.float32)))
        env.step(action.numpy())

    def physics() -> None:
        restore()
        mujoco.mj_step(model, data, base.frame_skip)

    return {"restore": restore, "physics": physics, "step + policy": step_with_policy}


def measure(task: str, args: Args) -> dict[str, dict[str, float]]:
    """``{contender: {part: (min us, p10 us)}}`` with the restore subtracted."""
    parts = {("rlwb", k): f for k, f in _rlwb_parts(task, args.warm_steps).items()} | {
        ("gymnasium", k): f for k, f in _gym_parts(task, args.warm_steps).items()
    }
    times: dict[tuple[str, str], list[int]] = {key: [] for key in parts}
    for _ in range(args.calls):
        for key, fn in parts.items():
            start = time.perf_counter_ns()
            fn()
            times[key].append(time.perf_counter_ns() - start)
    out: dict[str, dict[str, float]] = {}
    for (who, part), t in times.items():
        if part == "restore":
            continue
        base = min(times[(who, "restore")])
        out.setdefault(who, {})[part] = (min(t) - base) / 1e3
        out[who][part + " p10"] = (float(np.percentile(t, 10)) - base) / 1e3
    return out


def main() -> None:
    args = tyro.cli(Args)
    torch.set_num_threads(1)
    print("| task | part | rlwb us | gymnasium us | gymnasium / rlwb |")
    print("|---|---|---:|---:|---:|")
    for task in args.tasks:
        res = measure(task, args)
        for part in ("physics", "step + policy", "step + policy p10"):
            ours, theirs = res["rlwb"][part], res["gymnasium"][part]
            print(f"| {task} | {part} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
