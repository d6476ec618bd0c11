"""DMC throughput: env steps/s of rlwb's ``mujoco`` backend vs dm_control in a Python loop
vs shimmy + ``gymnasium.vector.SyncVectorEnv``, in one run (ratios are what carry over on
a shared machine). Random actions, autoreset included; one env step = one dm_control
control step (no action repeat).

Each measurement runs in its own child process (no contender inherits another's threads,
caches or memory), and the contenders alternate round by round (their order rotates), so
a change in the machine's load falls on all of them; every cell is printed with the load
average at its start, and the ratio to shimmy is taken within each round.

    python benchmarks/dmc_throughput.py --tasks humanoid-walk dog-run --members 64
    python benchmarks/dmc_throughput.py --smoke      # seconds: one short round, 2 members
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

# rlwb-1t: the engine on one thread (no worker), to tell the engine's own speed from its use
# of the second core (which a loaded machine may not have to give)
CONTENDERS = ("rlwb", "rlwb-1t", "dm_control", "shimmy")


def timed(step, members: int, seconds: float) -> float:  # noqa: ANN001 - callable
    """Env steps/s of ``step()`` (one call advances ``members`` envs), after a warm-up."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return calls * members / (time.perf_counter() - start)


def rlwb_mujoco(task: str, members: int, seconds: float, **options: int) -> float:
    from rlwb.engine import make_engine

    engine = make_engine(task, members, backend="mujoco", seed=0, **options)
    engine.reset()
    actions = torch.rand(64, members, engine.action_dim) * 2 - 1
    counter = iter(range(10**12))
    rate = timed(lambda: engine.step(actions[next(counter) % 64]), members, seconds)
    engine.close()
    return rate


def dm_control_loop(task: str, members: int, seconds: float) -> float:
    from dm_control import suite

    from rlwb.envs.dmc import dm_control_name

    domain, name = dm_control_name(task)
    envs = [suite.load(domain, name, task_kwargs={"random": i}) for i in range(members)]
    for env in envs:
        env.reset()
    spec = envs[0].action_spec()
    rng = np.random.default_rng(0)

    def step() -> None:
        for env in envs:
            if env.step(rng.uniform(spec.minimum, spec.maximum)).last():
                env.reset()

    return timed(step, members, seconds)


def shimmy_sync(task: str, members: int, seconds: float) -> float:
    import gymnasium as gym
    import shimmy

    from rlwb.tasks import get

    gym.register_envs(shimmy)
    gym_id = get(task).gym_id
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(gym_id)] * members)
    vec.reset(seed=0)
    vec.action_space.seed(0)
    rate = timed(lambda: vec.step(vec.action_space.sample()), members, seconds)
    vec.close()
    return rate


RUNNERS = {
    "rlwb": rlwb_mujoco,
    "rlwb-1t": lambda task, n, seconds: rlwb_mujoco(task, n, seconds, num_threads=1),
    "dm_control": dm_control_loop,
    "shimmy": shimmy_sync,
}


def measure_in_child(contender: str, task: str, members: int, seconds: float) -> float:
    """One cell in a fresh Python process (this script with ``--one``)."""
    cmd = [sys.executable, __file__, "--one", contender, task, str(members), str(seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rate"])


def run_rounds(tasks: list[str], members: list[int], seconds: float, rounds: int) -> list[dict]:
    """Every (task, members) cell, contenders alternating in rotated order each round."""
    rows = []
    for r in range(rounds):
        k = r % len(CONTENDERS)
        order = CONTENDERS[k:] + CONTENDERS[:k]
        for task in tasks:
            for n in members:
                row = {"round": r, "task": task, "members": n, "load": os.getloadavg()[0]}
                for contender in order:
                    row[contender] = measure_in_child(contender, task, n, seconds)
                row["ratio"] = row["rlwb"] / row["shimmy"]
                print(
                    f"| {r} | {task} | {n} | {row['rlwb']:,.0f} | {row['rlwb-1t']:,.0f} | "
                    f"{row['dm_control']:,.0f} | {row['shimmy']:,.0f} | {row['ratio']:.2f}x | "
                    f"{row['load']:.1f} |",
                    flush=True,
                )
                rows.append(row)
    return rows


def summary(rows: list[dict]) -> None:
    """Median over rounds of each contender and of the per-round ratio."""
    print("\n| task | members | rlwb mujoco | rlwb 1 thread | dm_control loop | shimmy + Sync | "
          "rlwb / shimmy (median, range) | load (range) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    cells = dict.fromkeys((row["task"], row["members"]) for row in rows)
    for task, n in cells:
        mine = [row for row in rows if (row["task"], row["members"]) == (task, n)]
        med = {k: statistics.median(row[k] for row in mine) for k in (*CONTENDERS, "ratio")}
        ratios, loads = [row["ratio"] for row in mine], [row["load"] for row in mine]
        print(
            f"| {task} | {n} | {med['rlwb']:,.0f} | {med['rlwb-1t']:,.0f} | "
            f"{med['dm_control']:,.0f} | {med['shimmy']:,.0f} | {med['ratio']:.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {min(loads):.1f}-{max(loads):.1f} |"
        )


def main(argv: list[str] | None = None) -> None:
    from absl import logging

    logging.set_verbosity(logging.ERROR)  # dm_control's cheetah XML warns on every load
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["humanoid-walk", "dog-run"])
    parser.add_argument("--members", nargs="+", type=int, default=[64])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per cell")
    parser.add_argument("--rounds", "--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--smoke", action="store_true", help="one short round, 2 members")
    parser.add_argument("--one", nargs=4, metavar=("CONTENDER", "TASK", "MEMBERS", "SECONDS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.one:
        contender, task, members, seconds = args.one
        rate = RUNNERS[contender](task, int(members), float(seconds))
        print(json.dumps({"rate": rate}))
        return
    if args.smoke:
        args.tasks, args.members, args.seconds, args.rounds = args.tasks[:1], [2], 0.2, 1
    print(
        f"{os.cpu_count()} CPUs, {args.seconds} s per cell, {args.rounds} rounds, each cell "
        "in its own process, contenders alternating\n"
    )
    print("| round | task | members | rlwb mujoco | rlwb 1 thread | dm_control loop | "
          "shimmy + Sync | rlwb / shimmy | load |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    summary(run_rounds(args.tasks, args.members, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
