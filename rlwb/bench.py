"""Engine throughput benchmark: env steps per second against the usual peers.

For every task and batch size the benchmark times, for about ``--seconds`` each:

* ``sync`` / ``async``: Gymnasium's ``SyncVectorEnv`` / ``AsyncVectorEnv`` (same-step
  autoreset) over ``gymnasium.make(task)``;
* ``envpool``: EnvPool's C++ pool with ``--threads`` threads (same v5 task ids);
* ``rlwb-<backend>``: ``make_engine(task, N, backend)`` stepped one batch at a time
  (closed loop) and ``engine.rollout(actions[N, H, A])`` (open loop, ``H = --horizon``,
  starting each time from one saved state, as a planner does; counted as member-steps
  computed, i.e. ``N`` times the steps until the last member terminated);
* ``ceiling``: ``mujoco.rollout`` of the same model with ``--threads`` threads, pure physics
  with random controls, converted to env steps (physics steps / ``frame_skip``).

Closed-loop cells run the same small torch policy (MLP 64-64, tanh) on every batch of
observations, so each peer pays for moving observations into torch and actions back. Torch
itself runs single-threaded everywhere so the simulators get the cores. Ratios compare the
first rlwb backend's closed loop with ``sync`` and ``envpool``, and its open loop with the
ceiling. Every cell runs in a process of its own (:mod:`rlwb.apart`: peers in one process
distort each other); with ``--repeats R`` each row's cells are measured R times, alternated,
and the best counts. Cells that cannot run here (missing package, unavailable backend,
``async`` above ``--async-max-envs`` processes) show ``n/a``; an unknown task is an error
before anything runs.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from rlwb.apart import Contender

TASK_IDS = {"HalfCheetah": "HalfCheetah-v5", "Hopper": "Hopper-v5", "Ant": "Ant-v5",
            "Humanoid": "Humanoid-v5"}  # fmt: skip
PEERS = ("sync", "async", "envpool")


@dataclass
class BenchConfig:
    """Engine throughput benchmark (env steps/s; see ``rlwb.bench``)."""

    tasks: list[str] = field(default_factory=lambda: list(TASK_IDS))
    """Short names (HalfCheetah, Hopper, Ant, Humanoid) or Gymnasium ids."""
    num_envs: list[int] = field(default_factory=lambda: [1, 16, 64, 256])
    """Batch sizes."""
    backends: list[str] = field(default_factory=lambda: ["mujoco"])
    """rlwb backends to time (mujoco, warp, torch, gym)."""
    peers: list[str] = field(default_factory=lambda: list(PEERS))
    """Peers to time: sync, async, envpool."""
    seconds: float = 1.0
    """Seconds per cell (after a short warm-up)."""
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Simulation threads for rlwb mujoco, EnvPool and the mujoco.rollout ceiling."""
    horizon: int = 100
    """Open-loop rollout horizon H."""
    repeats: int = 1
    """Measure each row this many times, interleaving its cells, and keep each cell's best
    (steadier ratios on a shared, loaded machine)."""
    async_max_envs: int = 64
    """Largest batch run with AsyncVectorEnv (one process per env)."""
    ceiling: bool = True
    """Time the mujoco.rollout physics ceiling."""
    open_loop: bool = True
    """Time rlwb's open-loop engine.rollout."""
    output: Path | None = None
    """Append the table (with machine, command and date) to this markdown file."""


# --------------------------------------------------------------------------- helpers
def _task_id(name: str) -> str:
    return TASK_IDS.get(name, name)


def bench_policy(obs_dim: int, act_dim: int) -> torch.nn.Module:
    """The fixed 64-64 tanh MLP every throughput measurement acts with (seeded: the same
    network in every process and peer)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, act_dim), torch.nn.Tanh(),
    )  # fmt: skip


def _time_loop(step: Callable[[], int], seconds: float, warmup: int = 3) -> float:
    """Call ``step`` (which returns env steps done) for ``seconds``; return steps/s."""
    for _ in range(warmup):
        step()
    done, start = 0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def _numpy_loop(env: Any, n: int, act_dim: int, seconds: float, **reset_kwargs: Any) -> float:
    """Closed loop over a numpy vector env (Gymnasium vector API or EnvPool's)."""
    obs, _ = env.reset(**reset_kwargs)
    policy = bench_policy(int(np.prod(obs.shape[1:])), act_dim)
    state = {"obs": obs}

    def step() -> int:
        with torch.no_grad():
            act = policy(torch.from_numpy(np.asarray(state["obs"], dtype=np.float32)))
        state["obs"] = env.step(act.numpy())[0]
        return n

    return _time_loop(step, seconds)


# --------------------------------------------------------------------------- peers
def bench_gymnasium(task_id: str, n: int, seconds: float, mode: str) -> float:
    import gymnasium as gym

    cls = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
    env = cls([lambda: gym.make(task_id) for _ in range(n)], autoreset_mode="SameStep")
    try:
        return _numpy_loop(env, n, env.single_action_space.shape[0], seconds, seed=0)
    finally:
        env.close()


def bench_envpool(task_id: str, n: int, seconds: float, threads: int) -> float:
    import envpool

    env = envpool.make_gymnasium(task_id, num_envs=n, batch_size=n, num_threads=threads, seed=0)
    try:
        return _numpy_loop(env, n, env.action_space.shape[0], seconds)
    finally:
        env.close()


def _make_engine(task_id: str, n: int, backend: str, threads: int) -> Any:
    from rlwb import make_engine

    kwargs = {"num_threads": min(threads, n)} if backend == "mujoco" else {}
    return make_engine(task_id, n, backend=backend, seed=0, **kwargs)


def bench_rlwb(task_id: str, n: int, seconds: float, backend: str, threads: int) -> float:
    torch.set_num_threads(1)  # the simulator gets the cores
    engine = _make_engine(task_id, n, backend, threads)
    try:
        state = {"obs": engine.reset()}
        policy = bench_policy(int(np.prod(engine.observation_shape)), engine.action_dim)

        def step() -> int:
            with torch.no_grad():
                act = policy(state["obs"].float()).to(engine.dtype)
            state["obs"] = engine.step(act)[0]
            return n

        return _time_loop(step, seconds)
    finally:
        engine.close()


def bench_rlwb_open_loop(
    task_id: str, n: int, seconds: float, backend: str, threads: int, horizon: int
) -> float:
    torch.set_num_threads(1)
    engine = _make_engine(task_id, n, backend, threads)
    try:
        engine.reset()
        start = engine.get_state()[0]
        gen = torch.Generator().manual_seed(0)
        low, high = engine.spec.action_low, engine.spec.action_high
        u = torch.rand(n, horizon, engine.action_dim, generator=gen, dtype=engine.dtype)
        actions = (low + (high - low) * u).to(engine.device)

        def step() -> int:
            # member-steps computed (the loop ends once every member has terminated)
            return n * int(engine.rollout(actions, init_state=start).lengths.max())

        return _time_loop(step, seconds, warmup=1)
    finally:
        engine.close()


def bench_ceiling(task_id: str, n: int, seconds: float, threads: int) -> float:
    """``mujoco.rollout`` physics steps/s over ``n`` trajectories, divided by frame_skip."""
    import gymnasium as gym
    import mujoco
    from mujoco import rollout

    env = gym.make(task_id)
    env.reset(seed=0)
    base = env.unwrapped
    model, frame_skip = base.model, int(base.frame_skip)
    sig = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.empty(mujoco.mj_stateSize(model, sig))
    mujoco.mj_getState(model, base.data, state0, sig)
    nstep = 100
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_ctrlrange.T
    ctrl = rng.uniform(lo, hi, (n, nstep, model.nu))
    init = np.tile(state0, (n, 1))
    nthread = min(threads, n)
    datas = [mujoco.MjData(model) for _ in range(nthread)]
    with rollout.Rollout(nthread=nthread if nthread > 1 else 0) as pool:

        def step() -> int:
            pool.rollout(model, datas, init, ctrl)
            return n * nstep

        physics = _time_loop(step, seconds, warmup=1)
    env.close()
    return physics / frame_skip


# --------------------------------------------------------------------------- grid
def run_grid(cfg: BenchConfig, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Time every cell, each in its own process; one row per (task, num_envs) with steps/s
    per column (None: could not run here)."""
    from rlwb.apart import by_name, run_apart

    rows = []
    for name in cfg.tasks:
        task_id = _task_id(name)
        for n in cfg.num_envs:
            log(f"{task_id} N={n}")
            records = run_apart(_measurements(cfg, task_id, n), max(1, cfg.repeats), log=log)
            rows.append({"task": task_id, "num_envs": n, **by_name(records)})
    return rows


def _measurements(cfg: BenchConfig, task_id: str, n: int) -> list[Contender]:
    """The cells of one row, in table order, as contenders for their own processes."""
    from rlwb.apart import Contender

    out = [
        Contender(peer, f"{__name__}:peer_rate", {"cfg": _plain(cfg), "peer": peer,
                                                  "task_id": task_id, "n": n})
        for peer in cfg.peers
    ]  # fmt: skip
    for backend in cfg.backends:
        args = {"task_id": task_id, "n": n, "seconds": cfg.seconds, "backend": backend,
                "threads": cfg.threads}  # fmt: skip
        out.append(Contender(f"rlwb-{backend}", f"{__name__}:bench_rlwb", args))
        if cfg.open_loop:
            out.append(
                Contender(
                    f"rlwb-{backend} open-loop",
                    f"{__name__}:bench_rlwb_open_loop",
                    {**args, "horizon": cfg.horizon},
                )
            )
    if cfg.ceiling:
        args = {"task_id": task_id, "n": n, "seconds": cfg.seconds, "threads": cfg.threads}
        out.append(Contender("ceiling", f"{__name__}:bench_ceiling", args))
    return out


def _plain(cfg: BenchConfig) -> dict[str, Any]:
    """The settings a peer cell reads, as JSON."""
    return {"seconds": cfg.seconds, "threads": cfg.threads, "async_max_envs": cfg.async_max_envs}


def peer_rate(cfg: dict[str, Any], peer: str, task_id: str, n: int) -> float | None:
    """One peer's steps/s (None where it does not run: ``async`` above its process cap)."""
    torch.set_num_threads(1)
    if peer in ("sync", "async"):
        if peer == "async" and n > cfg["async_max_envs"]:
            return None
        return bench_gymnasium(task_id, n, cfg["seconds"], peer)
    if peer == "envpool":
        return bench_envpool(task_id, n, cfg["seconds"], cfg["threads"])
    raise ValueError(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")


def check_tasks(names: list[str]) -> None:
    """One line for a task no backend and no Gymnasium registry knows."""
    import gymnasium

    from rlwb import tasks
    from rlwb.errors import UnknownTaskError

    for name in names:
        task_id = _task_id(name)
        if tasks.find(task_id) is None:
            tasks.register_gym_plugin(task_id)
            if task_id not in gymnasium.registry:
                raise UnknownTaskError(tasks.unknown_task_message(task_id))


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def format_table(rows: list[dict[str, Any]], cfg: BenchConfig) -> str:
    """Markdown table: steps/s per column, then the first rlwb backend's ratios."""
    value_cols = [k for k in rows[0] if k not in ("task", "num_envs")] if rows else []
    main = f"rlwb-{cfg.backends[0]}" if cfg.backends else None
    ratios = []
    if main is not None:
        ratios = [
            (f"{main} / sync", main, "sync"),
            (f"{main} / envpool", main, "envpool"),
            (f"{main} open-loop / ceiling", f"{main} open-loop", "ceiling"),
        ]
    header = ["task", "N", *value_cols, *(r[0] for r in ratios)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["task"], str(row["num_envs"])]
        cells += ["n/a" if row[c] is None else f"{row[c]:,.0f}" for c in value_cols]
        cells += [_ratio(row.get(a), row.get(b)) for _, a, b in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} logical cores{load}; {platform.platform()}"


def main(argv: list[str] | None = None) -> int:
    """``rlwb bench`` / ``benchmarks/engine_throughput.py``: run the grid, print the table."""
    import tyro

    cfg = tyro.cli(BenchConfig, args=argv, description=__doc__.split("\n\n")[0])
    for peer in cfg.peers:
        if peer not in PEERS:
            from rlwb.errors import ConfigError

            raise ConfigError(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")
    check_tasks(cfg.tasks)
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"# engine throughput, env steps/s ({machine_description()})", flush=True)
    rows = run_grid(cfg, log=lambda s: print(s, flush=True))
    table = format_table(rows, cfg)
    print(table)
    if cfg.output is not None:
        command = " ".join(shlex.quote(a) for a in (sys.argv[:1] + list(argv or sys.argv[1:])))
        with open(cfg.output, "a") as f:
            f.write(
                f"\n## Engine throughput ({started:%Y-%m-%d %H:%M} UTC)\n\n"
                f"- machine: {machine_description()}\n"
                f"- command: `{command}`\n"
                f"- env steps/s, closed loop with a 64-64 tanh MLP policy unless marked "
                f"open-loop; ceiling = mujoco.rollout physics steps/s / frame_skip with "
                f"{cfg.threads} threads; {cfg.seconds:g} s per cell, best of {cfg.repeats}\n\n"
                f"{table}\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
