"""Deep GA population throughput on Atari against the emulator ceiling.

    python benchmarks/atari_throughput.py                          # Pong-v5, N = 64 and 256
    python benchmarks/atari_throughput.py --conv small --sizes 64  # the authors' small net
    python benchmarks/atari_throughput.py --device cuda            # networks on the GPU

For each N, in alternating child processes (``--rounds`` of each), one measures:

* ``ceiling``: EnvPool stepping N Atari emulators with uniformly random actions (its own
  ``step``, no network, no rlwb bookkeeping): what the emulators alone can do here;
* ``population``: N conv networks (``--conv``, default the paper's large DQN network,
  random weights) driving the N emulators in one closed-loop ``engine.rollout`` of the
  envpool backend, member i by network i, the Deep GA's evaluation of a chunk of N;
  reported with the share of its time spent in the networks.

Both step the same game for ``--steps`` agent steps after a reset (no time limit reached),
with ``--threads`` EnvPool threads and one torch thread (``--torch-threads``). Rates are
agent steps per second (x4 for game frames). The issue's target is population >= 0.6 x
ceiling on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch


def _ceiling(game: str, n: int, steps: int, threads: int) -> dict[str, float]:
    import envpool

    pool = envpool.make_gymnasium(game, num_envs=n, batch_size=n, num_threads=threads, seed=0,
                                  noop_max=1, use_fire_reset=False)  # fmt: skip
    pool.reset()
    actions = np.random.default_rng(0).integers(0, pool.action_space.n, (steps, n), np.int32)
    start = time.perf_counter()
    for a in actions:
        pool.step(a)
    seconds = time.perf_counter() - start
    pool.close()
    return {"steps_per_second": n * steps / seconds}


def _population(game: str, n: int, steps: int, threads: int, conv: str,
                device: str) -> dict[str, float]:  # fmt: skip
    from rlwb.engine import make_engine
    from rlwb.policies import PopulationConv

    engine = make_engine(game, n, seed=0, num_threads=threads, device=device)
    net = PopulationConv(engine.spec.observation_shape, engine.spec.num_actions, n, conv, device)
    gen = torch.Generator().manual_seed(0)
    init = net.init_scale().cpu()
    net.set_params(torch.randn(n, net.num_params, generator=gen) * init)
    engine.reset(seed=0)
    start = time.perf_counter()
    result = engine.rollout(net, horizon=steps, stop_on_truncation=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    engine.close()
    done = int(result.lengths.sum())
    return {"steps_per_second": done / seconds, "network_share": net.network_seconds / seconds}


def _measure(args: argparse.Namespace, kind: str, n: int) -> dict[str, float]:
    if kind == "ceiling":
        return _ceiling(args.game, n, args.steps, args.threads)
    return _population(args.game, n, args.steps, args.threads, args.conv, args.device)


def _one(args: argparse.Namespace, kind: str, n: int) -> dict[str, float]:
    """One measurement in a child interpreter (its own threads and memory)."""
    if args.inline:
        return _measure(args, kind, n)
    cmd = [sys.executable, __file__, "--one", kind, str(n), "--game", args.game, "--steps",
           str(args.steps), "--threads", str(args.threads), "--conv", args.conv,
           "--device", args.device, "--torch-threads", str(args.torch_threads)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} N={n} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="Pong-v5")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=200, help="agent steps per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="EnvPool threads")  # fmt: skip
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--conv", default="large", help="large, nature or small")
    parser.add_argument("--device", default="cpu", help="device of the networks (cuda)")
    parser.add_argument("--inline", action="store_true",
                        help="measure in this process (a quick check, no child processes)")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    if args.one:
        print(json.dumps(_measure(args, args.one[0], int(args.one[1]))))
        return
    print(f"{args.game}, {args.steps} agent steps, network {args.conv} on {args.device}, "
          f"{args.threads} EnvPool threads, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| N | ceiling steps/s | population steps/s | ratio | network share | load |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        ceiling, population, share = [], [], []
        for _ in range(args.rounds):  # alternating, each in its own process
            ceiling.append(_one(args, "ceiling", n)["steps_per_second"])
            row = _one(args, "population", n)
            population.append(row["steps_per_second"])
            share.append(row["network_share"])
        c, p = float(np.median(ceiling)), float(np.median(population))
        print(f"| {n} | {c:,.0f} | {p:,.0f} | {p / c:.2f} | {np.median(share):.0%} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
