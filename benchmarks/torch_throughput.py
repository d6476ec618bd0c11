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

Every cell runs in its own process (:mod:`rlwb.apart`): JAX beside torch in one process
slowed the engine a hundredfold. The cells of a row alternate over ``--rounds`` (best kept),
so a loaded machine slows all of them alike; read the ratio columns. Actions are one fixed
random batch (no policy in the loop). ``--smoke`` is a seconds-long run of the same path.

    python benchmarks/torch_throughput.py --duration 0.5 --rounds 2
    python benchmarks/torch_throughput.py --append benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from rlwb.apart import Contender, Record, by_name, run_apart
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


def _engine_and_action(task_id: str, n: int, compiled: bool, seed: int = 0):  # noqa: ANN202
    engine = make_engine(task_id, n, backend="torch", seed=seed, compile=compiled)
    engine.reset()
    gen = torch.Generator().manual_seed(0)
    action = torch.rand(n, engine.action_dim, generator=gen) * 2 - 1
    return engine, action * engine.spec.action_high, gen


def engine_rate(task_id: str, n: int, duration: float, compiled: bool, threads: int) -> float:
    """``TorchEngine.step`` env steps/s; a compiled engine is first checked against eager."""
    torch.set_num_threads(threads)
    torch._dynamo.config.recompile_limit = 64
    engine, action, _ = _engine_and_action(task_id, n, compiled)
    if compiled:  # the compiled engine must agree with the eager reference
        pair = [_engine_and_action(task_id, n, c, seed=1)[0] for c in (True, False)]
        for _ in range(3):
            (obs_c, *_), (obs_e, *_) = (e.step(action) for e in pair)
            torch.testing.assert_close(obs_c, obs_e, rtol=1e-5, atol=1e-5)
    return rate(lambda: engine.step(action), n, duration)


def ceiling_rate(task_id: str, n: int, duration: float, compiled: bool, threads: int) -> float:
    """The same task math as a bare loop of tensor ops (no engine) env steps/s."""
    torch.set_num_threads(threads)
    torch._dynamo.config.recompile_limit = 64
    engine, action, gen = _engine_and_action(task_id, n, compiled=False)
    task = engine.task
    fn = torch.compile(task.step, dynamic=False) if compiled else task.step
    holder = [task.reset_state(n, gen).T.contiguous().T]  # the engine's column-major layout

    def bare() -> None:
        holder[0] = fn(holder[0], action)[0]

    with torch.no_grad():
        return rate(bare, n, duration)


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
    """Gymnasium's ``SyncVectorEnv`` of ``Pendulum-v1`` env steps/s."""
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


def row_contenders(task_id: str, n: int, args: argparse.Namespace) -> list[Contender]:
    """The cells of one table row, each to run in its own process."""
    here = f"{pathlib.Path(__file__).resolve()}"
    common = {"task_id": task_id, "n": n, "duration": args.duration, "threads": args.threads}
    out = []
    for compiled in (False,) if args.no_compile else (False, True):
        mode = "compiled" if compiled else "eager"
        for kind in ("engine", "ceiling"):
            target = f"{here}:{kind}_rate"
            out.append(Contender(f"{kind} {mode}", target, {**common, "compiled": compiled}))
    if args.gymnax and task_id == "Pendulum-v1":
        out.append(Contender("gymnax", f"{here}:gymnax_rate", {"n": n, "duration": args.duration}))
    return out


def main(argv: list[str] | None = None) -> list[Record]:
    """Print (and optionally append) the table; returns every run's record (which process
    measured what)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=0.5, help="seconds per cell")
    p.add_argument("--sizes", default="1,1024,16384,262144")
    p.add_argument("--tasks", nargs="*", default=list(TASKS), help="rows: " + ", ".join(TASKS))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--rounds", type=int, default=1, help="alternating runs per cell (best kept)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--gymnax", action="store_true", help="time gymnax (JAX) as a peer")
    p.add_argument("--smoke", action="store_true", help="seconds-long run of the same path")
    p.add_argument("--append", default=None, help="append the table to this markdown file")
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.sizes, args.no_compile, args.tasks = 0.05, "64", True, ["Pendulum-v1"]
    sizes = [int(s) for s in args.sizes.split(",")]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731

    lines = [
        "| task | num_envs | engine eager | ceiling eager | ratio | engine compiled "
        "| ceiling compiled | ratio | gymnax | best engine / gymnax |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    records: list[Record] = []
    for name in args.tasks:
        task_id = TASKS.get(name, name)
        for n in sizes:
            runs = run_apart(row_contenders(task_id, n, args), args.rounds, log=log)
            records += runs
            cell = by_name(runs)
            e_e, c_e = cell.get("engine eager"), cell.get("ceiling eager")
            e_c, c_c = cell.get("engine compiled"), cell.get("ceiling compiled")
            jax_rate = cell.get("gymnax")
            best = max((x for x in (e_e, e_c) if x is not None), default=None)
            row = f"| {name} | {n} | {fmt(e_e)} | {fmt(c_e)} | {ratio(e_e, c_e)} | "
            row += f"{fmt(e_c)} | {fmt(c_c)} | {ratio(e_c, c_c)} |"
            row += f" {fmt(jax_rate)} | {ratio(best, jax_rate)} |"
            lines.append(row)
            print(row, flush=True)
    gym_runs = run_apart(
        [Contender("gymnasium", f"{pathlib.Path(__file__).resolve()}:gym_rate",
                   {"duration": args.duration})], args.rounds, log=log)  # fmt: skip
    records += gym_runs
    g = by_name(gym_runs)["gymnasium"]
    lines.append(f"| Pendulum-v1, gymnasium SyncVectorEnv | 64 | {fmt(g)} | | | | | | | |")
    table = "\n".join(lines)
    header = (
        f"\n## torch backend throughput (env steps/s)\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {cpu_name()} ({os.cpu_count()} cores), load average "
        f"{os.getloadavg()[0]:.2f}, torch {torch.__version__}, {args.threads} threads\n"
        f"- command: `python benchmarks/torch_throughput.py {' '.join(argv or sys.argv[1:])}`\n"
        "- every cell in its own process, cells of a row alternated over the rounds (best "
        "kept); ratio = engine / ceiling (bare loop of the task's tensor ops)\n\n"
    )
    print(header + table)
    if args.append:
        with open(args.append, "a") as fh:
            fh.write(header + table + "\n")
    return records


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


if __name__ == "__main__":
    main()
