"""Env steps per second of the ``torch`` backend against its ceiling and against Gymnasium.

For Pendulum-v1 and the deceptive point-mass maze at several batch sizes this times:

* ``engine``  -- ``TorchEngine.step`` (validation, autoreset, episode statistics included);
* ``ceiling`` -- the same task math as a bare loop of tensor ops (``task.step`` on a state
  tensor, no engine), the most the engine could reach;
* both again under ``torch.compile`` (``--no-compile`` skips them: each size compiles anew);
* Gymnasium's ``SyncVectorEnv`` of 64 ``Pendulum-v1`` envs, the usual CPU baseline;
* with ``--gymnax`` (``pip install -e ".[bench]"``), gymnax's ``Pendulum-v1`` in JAX on the
  same CPU, ``jit(scan(vmap(step)))`` over 100 steps per call (autoreset included), at
  each batch size: the JAX peer of the engine (``gymnax`` column; ratio = engine / gymnax).

Engine and ceiling cells are measured back to back, so a loaded machine slows both alike;
read the ratio column. Actions are one fixed random batch (no policy in the loop).

    python benchmarks/torch_throughput.py --duration 0.5
    python benchmarks/torch_throughput.py --append benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from rlwb.engine import make_engine

TASKS = {"Pendulum-v1": "Pendulum-v1", "deceptive maze": "PointMaze-Deceptive-Dense-v0"}


def rate(step: Callable[[], object], n: int, duration: float) -> float:
    """Env steps per second of ``step`` (one call = ``n`` env steps), after a warm-up."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= duration and calls >= 3:
            return calls * n / elapsed


def measure(task_id: str, n: int, duration: float, compiled: bool) -> tuple[float, float]:
    """(engine, ceiling) env steps/s for one task and batch size."""
    engine = make_engine(task_id, n, backend="torch", seed=0, compile=compiled)
    engine.reset()
    gen = torch.Generator().manual_seed(0)
    action = torch.rand(n, engine.action_dim, generator=gen) * 2 - 1
    action = action * engine.spec.action_high
    engine_rate = rate(lambda: engine.step(action), n, duration)

    task = engine.task
    fn = torch.compile(task.step, dynamic=False) if compiled else task.step
    holder = [task.reset_state(n, gen).T.contiguous().T]  # the engine's column-major layout

    def bare() -> None:
        holder[0] = fn(holder[0], action)[0]

    with torch.no_grad():
        ceiling_rate = rate(bare, n, duration)
    if compiled:  # the compiled engine must agree with the eager reference
        pair = [make_engine(task_id, n, backend="torch", seed=1, compile=c) for c in (True, False)]
        for e in pair:
            e.reset()
        for _ in range(3):
            (obs_c, *_), (obs_e, *_) = (e.step(action) for e in pair)
            torch.testing.assert_close(obs_c, obs_e, rtol=1e-5, atol=1e-5)
    return engine_rate, ceiling_rate


def gymnax_rate(n: int, duration: float, steps: int = 100) -> float:
    """gymnax Pendulum-v1 env steps/s: ``steps`` vmapped steps per jitted ``lax.scan``."""
    import gymnax
    import jax
    import jax.numpy as jnp

    env, params = gymnax.make("Pendulum-v1")
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    rng = np.random.default_rng(0)
    action = jnp.asarray(rng.uniform(-2, 2, size=(n,)), dtype=jnp.float32)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(carry, _):  # noqa: ANN001, ANN202 - jax pytrees
        key, state = carry
        key, sub = jax.random.split(key)
        _, state, reward, *_ = vstep(jax.random.split(sub, n), state, action, params)
        return (key, state), reward.sum()

    run = jax.jit(lambda carry: jax.lax.scan(body, carry, None, length=steps))
    holder = [(jax.random.PRNGKey(1), state)]

    def call() -> None:
        holder[0], rewards = run(holder[0])
        rewards.block_until_ready()

    return rate(call, n * steps, duration)


def gym_rate(duration: float, num_envs: int = 64) -> float:
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(num_envs)])
    envs.reset(seed=0)
    action = np.random.default_rng(0).uniform(-2, 2, size=(num_envs, 1)).astype(np.float32)
    out = rate(lambda: envs.step(action), num_envs, duration)
    envs.close()
    return out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=0.5, help="seconds per cell")
    p.add_argument("--sizes", default="1,1024,16384,262144")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--gymnax", action="store_true", help="time gymnax (JAX) as a peer")
    p.add_argument("--append", default=None, help="append the table to this markdown file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch._dynamo.config.recompile_limit = 64
    sizes = [int(s) for s in args.sizes.split(",")]

    lines = [
        "| task | num_envs | engine eager | ceiling eager | ratio | engine compiled "
        "| ceiling compiled | ratio | gymnax | best engine / gymnax |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, task_id in TASKS.items():
        for n in sizes:
            eager = measure(task_id, n, args.duration, False)
            comp = (None, None) if args.no_compile else measure(task_id, n, args.duration, True)
            r_e = f"{eager[0] / eager[1]:.2f}"
            r_c = "-" if comp[0] is None else f"{comp[0] / comp[1]:.2f}"
            row = f"| {name} | {n} | {fmt(eager[0])} | {fmt(eager[1])} | {r_e} | "
            row += f"{fmt(comp[0])} | {fmt(comp[1])} | {r_c} |"
            jax_rate = gymnax_rate(n, args.duration) if args.gymnax and "Pendulum" in name else None
            best = max(x for x in (eager[0], comp[0]) if x is not None)
            row += f" {fmt(jax_rate)} | {'-' if jax_rate is None else f'{best / jax_rate:.2f}'} |"
            lines.append(row)
            print(row, flush=True)
    g = gym_rate(args.duration)
    lines.append(f"| Pendulum-v1, gymnasium SyncVectorEnv | 64 | {fmt(g)} | | | | | | | |")
    table = "\n".join(lines)
    header = (
        f"\n## torch backend throughput (env steps/s)\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {cpu_name()} ({os.cpu_count()} cores), "
        f"torch {torch.__version__}, {args.threads} threads, shared machine (loaded)\n"
        f"- command: `python benchmarks/torch_throughput.py {' '.join(argv or sys.argv[1:])}`\n"
        "- ratio = engine / ceiling (bare loop of the task's tensor ops), measured back to back\n\n"
    )
    print(header + table)
    if args.append:
        with open(args.append, "a") as fh:
            fh.write(header + table + "\n")
    return table


if __name__ == "__main__":
    main()
