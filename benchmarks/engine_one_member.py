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

``--method blocks`` measures free-running loops instead: each contender steps its own
episodes (random actions, or the policy on its own observations) in blocks of
``--block`` calls, the blocks of all contenders alternated in a new random order every
round. Within a block the caches hold that contender's code and data, as in a user's
loop (call-by-call alternation makes every call start cold: a MuJoCo step evicts the
Python and torch code that follows it, and which contender goes first after the other
shifts a few percent); across rounds both share the machine's drift. The statistic is
the median over rounds of the block's mean time per call.

``--method processes`` (the default) runs the same free-running blocks with each contender
in a process of its own (:mod:`rlwb.apart`), the two alternated over ``--rounds``: no
library's imports, caches or thread pools in the other's way. The in-process methods above
stay for taking a step apart (physics against the rest); the ratio to quote is this one.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np
import torch
import tyro

from rlwb import make_engine
from rlwb.apart import Contender, run_apart
from rlwb.bench import bench_policy


@dataclass
class Args:
    tasks: list[str] = field(default_factory=lambda: ["HalfCheetah-v5", "Hopper-v5"])
    calls: int = 3000
    warm_steps: int = 100
    """Policy steps taken first, so both start from a typical running state."""
    method: str = "processes"
    """``processes``: free-running blocks, each contender in its own process, alternated;
    ``restore``: every call from one saved state, call by call; ``blocks``: free-running
    blocks of calls in one process (see the module docstring)."""
    rounds: int = 20
    block: int = 500


def _rlwb_parts(task: str, warm: int) -> dict[str, Callable[[], object]]:
    engine = make_engine(task, 1, backend="mujoco", seed=0, num_threads=1)
    obs = engine.reset()
    policy = bench_policy(engine.observation_shape[0], engine.action_dim)
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
    policy = bench_policy(obs.shape[1], env.single_action_space.shape[0])
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


def measure_blocks(task: str, args: Args) -> dict[str, float]:
    """``{contender: us per call}``: free-running blocks (see the module docstring)."""
    engine = make_engine(task, 1, backend="mujoco", seed=0, num_threads=1)
    env = gym.vector.SyncVectorEnv([lambda: gym.make(task)], autoreset_mode="SameStep")
    state = {"rlwb": engine.reset(seed=0), "gym": env.reset(seed=0)[0]}
    policy = bench_policy(engine.observation_shape[0], engine.action_dim)
    actions = np.random.default_rng(0).uniform(-1, 1, (4096, engine.action_dim))
    actions = actions.astype(np.float32)
    actions_t = torch.from_numpy(actions)
    count = [0]

    def rlwb_policy() -> None:
        with torch.no_grad():
            state["rlwb"] = engine.step(policy(state["rlwb"]))[0]

    def gym_policy() -> None:
        with torch.no_grad():
            action = policy(torch.from_numpy(np.asarray(state["gym"], dtype=np.float32)))
        state["gym"] = env.step(action.numpy())[0]

    def rlwb_random() -> None:
        i = count[0] = (count[0] + 1) % 4096
        engine.step(actions_t[i : i + 1])

    def gym_random() -> None:
        i = count[0] = (count[0] + 1) % 4096
        env.step(actions[i : i + 1])

    order = [("rlwb step + policy", rlwb_policy), ("gymnasium step + policy", gym_policy),
             ("rlwb step (random actions)", rlwb_random),
             ("gymnasium step (random actions)", gym_random)]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name, _ in order}
    for _, fn in order:
        for _ in range(args.warm_steps):
            fn()
    shuffle = np.random.default_rng(1)
    for _ in range(args.rounds):
        for k in shuffle.permutation(len(order)):
            name, fn = order[k]
            start = time.perf_counter_ns()
            for _ in range(args.block):
                fn()
            times[name].append((time.perf_counter_ns() - start) / args.block / 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def measure_alone(task: str, who: str, block: int, warm_steps: int) -> dict[str, float]:
    """``{loop: us per call}`` of one contender (rlwb or gymnasium) in this process: a block
    of free-running calls of each loop after a warm-up."""
    torch.set_num_threads(1)
    if who == "rlwb":
        engine = make_engine(task, 1, backend="mujoco", seed=0, num_threads=1)
        obs, act_dim = engine.reset(seed=0), engine.action_dim
        step = lambda action: engine.step(torch.from_numpy(action))[0]  # noqa: E731
        to_tensor = lambda o: o  # noqa: E731
    else:
        env = gym.vector.SyncVectorEnv([lambda: gym.make(task)], autoreset_mode="SameStep")
        obs, act_dim = env.reset(seed=0)[0], env.single_action_space.shape[0]
        step = lambda action: env.step(action)[0]  # noqa: E731
        to_tensor = lambda o: torch.from_numpy(np.asarray(o, dtype=np.float32))  # noqa: E731
    policy = bench_policy(int(np.prod(obs.shape[1:])), act_dim)
    actions = np.random.default_rng(0).uniform(-1, 1, (4096, 1, act_dim)).astype(np.float32)
    holder = [obs]

    def with_policy(_: int) -> None:
        with torch.no_grad():
            holder[0] = step(policy(to_tensor(holder[0])).numpy())

    def random(i: int) -> None:
        step(actions[i % 4096])

    out = {}
    for loop, fn in (("step + policy", with_policy), ("step (random actions)", random)):
        for i in range(warm_steps):
            fn(i)
        start = time.perf_counter_ns()
        for i in range(block):
            fn(i)
        out[loop] = (time.perf_counter_ns() - start) / block / 1e3
    return out


def measure_processes(task: str, args: Args) -> dict[str, float]:
    """``{"<contender> <loop>": median us per call}`` over alternated one-process runs."""
    here = str(pathlib.Path(__file__).resolve())
    contenders = [
        Contender(who, f"{here}:measure_alone",
                  {"task": task, "who": who, "block": args.block, "warm_steps": args.warm_steps})
        for who in ("rlwb", "gymnasium")
    ]  # fmt: skip
    times: dict[str, list[float]] = {}
    for record in run_apart(contenders, args.rounds):
        if record.error is not None:
            raise RuntimeError(f"{record.name} failed: {record.error}")
        for loop, us in record.value.items():
            times.setdefault(f"{record.name} {loop}", []).append(us)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    args = tyro.cli(Args)
    torch.set_num_threads(1)
    if args.method in ("blocks", "processes"):
        measure_loops = measure_processes if args.method == "processes" else measure_blocks
        print(f"# method {args.method}, load average {os.getloadavg()[0]:.2f}")
        print("| task | loop | rlwb us | gymnasium us | gymnasium / rlwb |")
        print("|---|---|---:|---:|---:|")
        for task in args.tasks:
            res = measure_loops(task, args)
            for loop in ("step + policy", "step (random actions)"):
                ours, theirs = res[f"rlwb {loop}"], res[f"gymnasium {loop}"]
                print(f"| {task} | {loop} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} |")
        return
    print("| task | part | rlwb us | gymnasium us | gymnasium / rlwb |")
    print("|---|---|---:|---:|---:|")
    for task in args.tasks:
        res = measure(task, args)
        for part in ("physics", "step + policy", "step + policy p10"):
            ours, theirs = res["rlwb"][part], res["gymnasium"][part]
            print(f"| {task} | {part} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
