"""Pixel throughput: env steps/s with 84x84 frame-stacked image observations, rlwb's
``mujoco`` backend (``observation="pixels"``) vs dm_control's own loop (``env.step`` +
``physics.render``) vs shimmy + ``gymnasium.vector.SyncVectorEnv`` rendering every member
(``render_mode="rgb_array"``), in one run. Random actions, autoreset included; every
contender returns the same thing per step: each member's stack of its last 3 frames.

Each cell runs in its own interpreter (:func:`rlwb.apart.run_apart`), the contenders
alternating round by round in rotated order, so a change in the machine's load falls on all
of them; every cell is printed with the load average at its start, and the ratio to the
fastest peer is taken within each round. Beside each rate, the contender's CPU
milliseconds per env step (process CPU time, every thread, and rlwb's worker processes'):
what a frame costs whatever the load, where the rate also depends on how many cores the
machine has free. The peers render with Mesa's default rasterizer threads (one per core),
rlwb with none per process and a forked render worker per core beside the caller. ``rlwb-1t`` is
the engine rendering on one thread: the gap between it and ``rlwb`` is what the second core
gave. The peers render with
dm_control's ``physics.render`` (its own OpenGL context, ``MUJOCO_GL``: EGL here), the
frames rlwb's equal bit for bit (tests/test_pixels.py).

    python benchmarks/pixel_throughput.py                       # cheetah-run, walker-walk; 1 16 64
    python benchmarks/pixel_throughput.py --members 16 --rounds 3
    python benchmarks/pixel_throughput.py --smoke               # seconds: 1 member, 1 round
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import deque

import numpy as np

from rlwb.apart import Contender, Record, load_target, run_apart

CONTENDERS = ("rlwb", "rlwb-1t", "dm_control", "shimmy")
PEERS = ("dm_control", "shimmy")
SIZE, STACK = 84, 3


def _cpu_seconds(pids: tuple[int, ...]) -> float:
    """CPU seconds of this process (all its threads) and of its live worker processes."""
    total = time.process_time()
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:  # utime and stime, in clock ticks
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _timed(step, members: int, seconds: float, min_calls: int = 2, pids=()) -> dict:  # noqa: ANN001
    """Env steps/s of ``step()`` (one call advances ``members`` envs) and the CPU
    milliseconds per env step of the process (all its threads, the renderer's included) and
    its worker processes ``pids``, after one warm-up call (contexts, caches), over at least
    ``seconds`` and ``min_calls`` calls."""
    step()
    calls, start, cpu = 0, time.perf_counter(), _cpu_seconds(pids)
    while calls < min_calls or time.perf_counter() - start < seconds:
        step()
        calls += 1
    steps = calls * members
    return {"rate": steps / (time.perf_counter() - start),
            "cpu_ms": 1000 * (_cpu_seconds(pids) - cpu) / steps}  # fmt: skip


def _mesa_default_threads() -> None:
    """Peers render with Mesa's default rasterizer threads (one per core), not the
    ``LP_NUM_THREADS=0`` that importing rlwb sets for its own forked render workers."""
    from rlwb.engine import pixels

    if pixels.LP_THREADS_SET_BY_RLWB:
        os.environ.pop("LP_NUM_THREADS", None)


def _camera(task: str) -> int:
    from rlwb.tasks import build_task, get

    return build_task(get(task), {}, []).render_camera()


def rlwb_pixels(task: str, members: int, seconds: float, threads: int | None = None) -> dict:
    import torch

    from rlwb.engine import make_engine

    options = {} if threads is None else {"num_threads": threads}
    engine = make_engine(task, members, backend="mujoco", seed=0, observation="pixels",
                         image_size=SIZE, frame_stack=STACK, **options)  # fmt: skip
    engine.reset()
    actions = torch.rand(16, members, engine.action_dim) * 2 - 1
    counter = iter(range(10**12))
    workers = (getattr(engine, "_workers", None), getattr(engine, "_render_workers", None))
    pids = tuple(pid for w in workers if w is not None for pid in w.pids)
    rate = _timed(lambda: engine.step(actions[next(counter) % 16]), members, seconds, pids=pids)
    engine.close()
    return rate


class _Stack:
    """The last ``STACK`` frames of one env, concatenated along channels as TD-MPC's
    frame-stack wrapper returns them (so every contender hands out the same array)."""

    def __init__(self, frame: np.ndarray) -> None:
        self.frames = deque([frame.transpose(2, 0, 1)] * STACK, maxlen=STACK)

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(frame.transpose(2, 0, 1))
        return np.concatenate(list(self.frames), axis=0)


def dm_control_loop(task: str, members: int, seconds: float) -> dict:
    _mesa_default_threads()  # before dm_control's import, which opens its EGL display
    from absl import logging
    from dm_control import suite

    from rlwb.envs.dmc import dm_control_name

    logging.set_verbosity(logging.ERROR)
    domain, name = dm_control_name(task)
    camera = _camera(task)
    envs = [suite.load(domain, name, task_kwargs={"random": i}) for i in range(members)]
    stacks = []
    for env in envs:
        env.reset()
        stacks.append(_Stack(env.physics.render(SIZE, SIZE, camera_id=camera)))
    spec = envs[0].action_spec()
    rng = np.random.default_rng(0)

    def step() -> None:
        for k, env in enumerate(envs):
            if env.step(rng.uniform(spec.minimum, spec.maximum)).last():
                env.reset()
                stacks[k] = _Stack(env.physics.render(SIZE, SIZE, camera_id=camera))
            else:
                stacks[k].push(env.physics.render(SIZE, SIZE, camera_id=camera))

    return _timed(step, members, seconds)


def shimmy_sync(task: str, members: int, seconds: float) -> dict:
    _mesa_default_threads()  # before dm_control's import, which opens its EGL display
    import gymnasium as gym
    import shimmy
    from absl import logging

    from rlwb.tasks import get

    logging.set_verbosity(logging.ERROR)
    gym.register_envs(shimmy)
    render = {"width": SIZE, "height": SIZE, "camera_id": _camera(task)}
    make = lambda: gym.make(get(task).gym_id, render_mode="rgb_array", render_kwargs=render)  # noqa: E731
    vec = gym.vector.SyncVectorEnv([make] * members)
    vec.reset(seed=0)
    vec.action_space.seed(0)
    stacks = [_Stack(frame) for frame in vec.render()]

    def step() -> None:
        vec.step(vec.action_space.sample())
        for stack, frame in zip(stacks, vec.render(), strict=True):
            stack.push(frame)  # (an autoreset frame is pushed too: same cost)

    rate = _timed(step, members, seconds)
    vec.close()
    return rate


def _contenders(task: str, members: int, seconds: float, names: tuple[str, ...]) -> list:
    here = os.path.abspath(__file__)
    targets = {
        "rlwb": ("rlwb_pixels", {}),
        "rlwb-1t": ("rlwb_pixels", {"threads": 1}),
        "dm_control": ("dm_control_loop", {}),
        "shimmy": ("shimmy_sync", {}),
    }
    return [
        Contender(name, f"{here}:{targets[name][0]}",
                  {"task": task, "members": members, "seconds": seconds, **targets[name][1]})
        for name in names
    ]  # fmt: skip


def _in_this_process(contenders: list[Contender]) -> list[Record]:
    """The smoke's shortcut: every contender in this process (no interpreter starts)."""
    return [Record(c.name, 0, k, os.getpid(), value=load_target(c.target)(**c.kwargs))
            for k, c in enumerate(contenders)]  # fmt: skip


def run_cells(tasks: list[str], members: list[int], seconds: float, rounds: int,
              names: tuple[str, ...], apart: bool = True) -> list[dict]:  # fmt: skip
    rows = []
    for r in range(rounds):
        for task in tasks:
            for n in members:
                row: dict = {"round": r, "task": task, "members": n, "load": os.getloadavg()[0]}
                contenders = _contenders(task, n, seconds, names)
                shift = r % len(contenders)
                measure = run_apart if apart else _in_this_process
                for record in measure(contenders[shift:] + contenders[:shift]):
                    value = record.value if record.error is None else {}
                    row[record.name] = value.get("rate", NAN)
                    row[f"{record.name} cpu"] = value.get("cpu_ms", NAN)
                    if record.error:
                        print(f"  {record.name}: {record.error}", flush=True)
                peers = [row[p] for p in PEERS if p in row and row[p] == row[p]]
                row["ratio"] = row["rlwb"] / max(peers) if peers and "rlwb" in row else NAN
                print(f"| {r} | {task} | {n} | {_cells(row, names)} | {row['ratio']:.2f}x | "
                      f"{row['load']:.1f} |", flush=True)  # fmt: skip
                rows.append(row)
    return rows


NAN = float("nan")


def _cells(row: dict, names: tuple[str, ...]) -> str:
    """Each contender's env steps/s, then (in parentheses) its CPU ms per env step."""
    return " | ".join(f"{row[name]:,.1f} ({row[f'{name} cpu']:,.0f})" for name in names)


def _header(names: tuple[str, ...]) -> str:
    return " | ".join(f"{name} steps/s (CPU ms/step)" for name in names)


def summary(rows: list[dict], names: tuple[str, ...]) -> None:
    """Median over rounds of each contender and of the per-round ratio."""
    print(f"\n| task | members | {_header(names)} | rlwb / fastest peer (median, range) "
          "| load (range) |")  # fmt: skip
    print("|---|---:|" + "---:|" * len(names) + "---:|---:|")
    for task, n in dict.fromkeys((row["task"], row["members"]) for row in rows):
        mine = [row for row in rows if (row["task"], row["members"]) == (task, n)]
        keys = (*names, *(f"{name} cpu" for name in names), "ratio")
        med = {k: statistics.median(row[k] for row in mine) for k in keys}
        ratios, loads = [row["ratio"] for row in mine], [row["load"] for row in mine]
        cells = _cells(med, names)
        print(f"| {task} | {n} | {cells} | {med['ratio']:.2f}x ({min(ratios):.2f}-"
              f"{max(ratios):.2f}) | {min(loads):.1f}-{max(loads):.1f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cheetah-run", "walker-walk"])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per cell")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: 1 member, 1 round, all in this process")  # fmt: skip
    args = parser.parse_args(argv)
    names = tuple(args.contenders)
    if args.smoke:  # (rlwb-1t runs rlwb's code: left out to keep the smoke short)
        args.tasks, args.members, args.seconds, args.rounds = args.tasks[:1], [1], 0.05, 1
        names = tuple(name for name in names if name != "rlwb-1t")
    print(f"{os.cpu_count()} CPUs, {SIZE}x{SIZE} frames, stack {STACK}, {args.seconds} s per "
          f"cell, {args.rounds} rounds, each cell in its own process, contenders alternating, "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL', 'egl')}\n")  # fmt: skip
    print(f"| round | task | members | {_header(names)} | rlwb / fastest peer | load |")
    print("|---:|---|---:|" + "---:|" * len(names) + "---:|---:|")
    rows = run_cells(args.tasks, args.members, args.seconds, args.rounds, names, not args.smoke)
    summary(rows, names)


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
