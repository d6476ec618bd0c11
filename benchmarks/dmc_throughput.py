"""DMC throughput: env steps/s of rlwb's ``mujoco`` backend vs dm_control in a Python loop
vs shimmy + ``gymnasium.vector.SyncVectorEnv``, in one run (ratios are what carry over on
a shared machine). Random actions, autoreset included; one env step = one dm_control
control step (no action repeat).

    python benchmarks/dmc_throughput.py --tasks cheetah-run walker-walk --members 1 64 256
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
import torch

from rlwb.engine import make_engine


def timed(step, members: int, seconds: float) -> float:  # noqa: ANN001 - callable
    """Env steps/s of ``step()`` (one call advances ``members`` envs), after a warm-up."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return calls * members / (time.perf_counter() - start)


def rlwb_mujoco(task: str, members: int, seconds: float) -> float:
    engine = make_engine(task, members, backend="mujoco", seed=0)
    engine.reset()
    actions = torch.rand(64, members, engine.action_dim) * 2 - 1
    counter = iter(range(10**12))
    rate = timed(lambda: engine.step(actions[next(counter) % 64]), members, seconds)
    engine.close()
    return rate


def dm_control_loop(task: str, members: int, seconds: float) -> float:
    from dm_control import suite

    domain, _, name = task.partition("-")
    envs = [suite.load(domain, name, task_kwargs={"random": i}) for i in range(members)]
    for env in envs:
        env.reset()
    shape = envs[0].action_spec().shape
    rng = np.random.default_rng(0)

    def step() -> None:
        for env in envs:
            if env.step(rng.uniform(-1, 1, shape)).last():
                env.reset()

    return timed(step, members, seconds)


def shimmy_sync(task: str, members: int, seconds: float) -> float:
    import shimmy

    gym.register_envs(shimmy)
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(f"dm_control/{task}-v0")] * members)
    vec.reset(seed=0)
    rate = timed(lambda: vec.step(vec.action_space.sample()), members, seconds)
    vec.close()
    return rate


def main() -> None:
    from absl import logging

    logging.set_verbosity(logging.ERROR)  # dm_control's cheetah XML warns on every load
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cheetah-run", "walker-walk"])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 64, 256])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many per cell")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"torch threads {torch.get_num_threads()}, {args.seconds} s per cell, best of "
        f"{args.repeats}, load {load:.1f}"
    )
    print("| task | members | rlwb mujoco | dm_control loop | shimmy + Sync | rlwb / shimmy |")
    print("|---|---:|---:|---:|---:|---:|")
    for task in args.tasks:
        for n in args.members:
            ours, loop, sync = (
                max(run(task, n, args.seconds) for _ in range(args.repeats))
                for run in (rlwb_mujoco, dm_control_loop, shimmy_sync)
            )
            ratio = ours / sync
            print(f"| {task} | {n} | {ours:,.0f} | {loop:,.0f} | {sync:,.0f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
