"""Where a closed-loop step of the ``mujoco`` backend spends its time, on the same states.

The throughput grid (``engine_throughput.py``) compares closed-loop stepping with a
``mujoco.rollout`` ceiling that starts from the reset state; a policy-driven batch visits
other (contact-heavier) states, so that ratio mixes engine overhead with physics cost. This
script times, on one batch in one state: the thread pool's physics alone, the backend's
``_step_members`` (physics + the task's batched math), the public ``step`` (plus
validation, autoreset and episode bookkeeping), ``step`` with a policy in the loop, and
``mujoco.rollout`` over the very same member states and controls (the ceiling), and
``step`` with a policy for ``--run-length`` steps back to back from the same states (a
closed loop as training runs it: forked workers stay awake between steps, where a step
right after ``set_state`` first wakes them).

    python benchmarks/engine_step_overhead.py --task HalfCheetah-v5 --num-envs 64 256
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch
import tyro
from mujoco import rollout

from rlwb import make_engine


@dataclass
class Args:
    task: str = "HalfCheetah-v5"
    num_envs: list[int] = field(default_factory=lambda: [64, 256])
    threads: int = 2
    workers: str = "auto"
    """Backend option: "auto"/"process" (forked workers) or "thread"."""
    run_length: int = 4
    """Steps per call of the back-to-back part (its ms are per step)."""
    warm_steps: int = 50
    """Policy steps taken first, so the batch is in a typical running state."""
    repeats: int = 200
    stat: str = "min"
    """Per-call statistic: "min" (robust on a loaded, shared machine: the cost when the
    process got the cores) or "mean" (the average over all calls)."""


def _ms(parts: dict[str, Callable[[], object]], repeats: int, stat: str) -> dict[str, float]:
    """ms per call of each part; the parts take turns call by call, so a burst of load
    on the shared machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in parts}
    for fn in parts.values():
        fn()
    for _ in range(repeats):
        for name, fn in parts.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    pick = min if stat == "min" else (lambda t: sum(t) / len(t))
    return {name: pick(t) * 1e3 for name, t in times.items()}


def measure(args: Args, n: int) -> dict[str, float]:
    engine = make_engine(
        args.task, n, backend="mujoco", seed=0, num_threads=args.threads, workers=args.workers
    )
    obs = engine.reset()
    policy = torch.nn.Sequential(
        torch.nn.Linear(obs.shape[1], 64), torch.nn.Tanh(), torch.nn.Linear(64, engine.action_dim)
    )
    with torch.no_grad():
        for _ in range(args.warm_steps):
            obs = engine.step(policy(obs).clamp(-1, 1))[0]
        action = policy(obs).clamp(-1, 1)
    model = engine.model
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = engine.get_state()[:, : mujoco.mj_stateSize(model, full)].numpy().copy()
    ctrl = np.repeat(action.double().numpy()[:, None, :], engine.frame_skip, axis=1)
    datas = [mujoco.MjData(model) for _ in range(args.threads)]
    pool = rollout.Rollout(nthread=args.threads)
    snapshot = engine.get_state()

    def restore() -> None:  # every timing starts from the same states
        engine.set_state(snapshot)

    def physics() -> None:
        restore()
        engine._run_steps(engine._chunks, None)

    def members() -> None:
        restore()
        engine._step_members(action)

    def step() -> None:
        restore()
        engine.step(action)

    def step_with_policy() -> None:
        restore()
        with torch.no_grad():
            engine.step(policy(engine._obs).clamp(-1, 1))

    def steps_back_to_back() -> None:
        restore()
        with torch.no_grad():
            for _ in range(args.run_length):
                engine.step(policy(engine._obs).clamp(-1, 1))

    def ceiling() -> None:
        pool.rollout(model, datas, states, ctrl)

    parts = {
        "restore (subtracted)": restore,
        "ceiling: mujoco.rollout": ceiling,
        "pool physics": physics,
        "_step_members": members,
        "step": step,
        "step + policy": step_with_policy,
        "step + policy, back to back": steps_back_to_back,
    }
    results = _ms(parts, args.repeats, args.stat)
    engine.close()
    pool.close()
    base = results["restore (subtracted)"]
    fixed = ("ceiling", "restore")
    out = {k: (v if k.startswith(fixed) else v - base) for k, v in results.items()}
    out["step + policy, back to back"] = (out["step + policy, back to back"]) / args.run_length
    return out


def main() -> None:
    args = tyro.cli(Args)
    torch.set_num_threads(1)
    for n in args.num_envs:
        res = measure(args, n)
        ceiling = res["ceiling: mujoco.rollout"]
        print(
            f"\n{args.task}, {n} members, {args.threads} threads, workers={args.workers} "
            "(ms per batch env step)"
        )
        print("| part | ms | ceiling / part |")
        print("|---|---|---|")
        for name, ms in res.items():
            print(f"| {name} | {ms:.3f} | {ceiling / ms:.2f} |")


if __name__ == "__main__":
    main()
