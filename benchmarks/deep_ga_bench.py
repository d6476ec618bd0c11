"""Deep GA population evaluation speed: rlwb against EvoTorch, same network, population, task.

One evaluation = every network of a population runs one episode (at most ``--horizon``
steps) of the task as registered (Humanoid-v5 ends an episode when the humanoid falls).
rlwb: the Deep GA's evaluator (one closed-loop rollout of the ``mujoco`` engine, member i
driven by network i, batched matmuls; physics on the engine's threads, one per core, only
for members still running; the policy on one torch thread, only for networks whose member
still runs). EvoTorch (``pip install evotorch``): ``VecGymNE`` with the same 2 x 256 tanh
MLP on Gymnasium envs in one process, timed with each of ``--evotorch-threads`` torch
threads (its envs step one after another on one core). Its other multi-core option, Ray
actors (``num_actors``), fails with evotorch 0.6.1 on ray 2.60 (TypeError in
``actor.call``), so it is not measured.
Both evaluate the same parameter vectors (our flat layout mapped to ``nn.Linear``'s);
frames are executed env steps. Each round times one evaluation of every contender, each in
a process of its own (:mod:`rlwb.apart`: built, warmed up, timed), alternated so they see the
same load; the ratio is against the best EvoTorch configuration of the round.

    python benchmarks/deep_ga_bench.py                         # HalfCheetah-v5, Humanoid-v5
    python benchmarks/deep_ga_bench.py --tasks Humanoid-v5 --rounds 3 --evotorch-threads 1
    python benchmarks/deep_ga_bench.py --tasks Humanoid-v5 --no-falls --horizon 200
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import torch

from rlwb.agents.deep_ga.evaluation import LocalEvaluator, start_states
from rlwb.agents.deep_ga.genome import Genomes
from rlwb.apart import Contender, run_apart
from rlwb.engine import make_engine
from rlwb.policies import PopulationMLP

NO_FALLS = {"terminate_when_unhealthy": False}


def population(task: str, size: int, hidden: tuple[int, ...], **task_kwargs):
    """The networks both libraries evaluate: a Deep GA generation-0 population."""
    engine = make_engine(task, 1, backend="mujoco", **task_kwargs)
    spec = engine.spec
    net = PopulationMLP(
        spec.observation_shape[0], spec.action_dim, hidden, 1, spec.action_low, spec.action_high
    )
    genomes = Genomes(net.num_params, net.init_scale(), 0.01, 2**24, 0, "cpu")
    seeds = genomes.draw(size, torch.Generator().manual_seed(0))
    return engine, net, seeds, genomes.init(seeds)


def torch_layout(net: PopulationMLP, params: torch.Tensor) -> torch.Tensor:
    """Our [in, out] weights as ``nn.Linear``'s [out, in] (then bias), layer by layer: the
    flat order EvoTorch's parameter vectors use."""
    parts = []
    for w_off, b_off, fan_in, fan_out in net.layout:
        weight = params[:, w_off:b_off].reshape(-1, fan_in, fan_out).transpose(1, 2)
        parts += [weight.reshape(len(params), -1), params[:, b_off : b_off + fan_out]]
    return torch.cat(parts, 1)


class RlwbEvaluation:
    """The Deep GA's evaluator on the ``mujoco`` engine (its physics threads: one per core)
    with torch on one thread; built and warmed up once, timed per call. The warm-up is one
    whole evaluation, as EvoTorch's below: a generation after the first finds its weight
    buffers allocated (the first call also pays their page faults, ~0.4 s on Humanoid)."""

    def __init__(self, task: str, size: int, horizon: int, hidden: tuple[int, ...], kwargs):
        engine, net, seeds, self.params = population(task, size, hidden, **kwargs)
        self.genomes = [[s] for s in seeds]
        self.evaluator = LocalEvaluator(engine.spawn, net, horizon, chunk=size)  # one batch
        start_states(self.evaluator.engines.get(size), 0)  # builds the engine
        self.evaluator.evaluate(self.params, self.genomes, 1, seed=0)  # warm-up

    def __call__(self, threads: int = 1) -> tuple[float, float]:
        torch.set_num_threads(threads)
        start = time.perf_counter()
        result = self.evaluator.evaluate(self.params, self.genomes, 1, seed=1)
        elapsed = time.perf_counter() - start
        return result.frames / elapsed, float(result.lengths.to(torch.float64).mean())

    def close(self) -> None:
        self.evaluator.close()


class Bounds(torch.nn.Module):
    """``tanh`` output rescaled to the action bounds, as :class:`PopulationMLP` does."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.clone())
        self.register_buffer("shift", shift.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * self.scale + self.shift


def same_network(net: PopulationMLP) -> torch.nn.Module:
    """One network of ``net``'s architecture as an ``nn.Sequential`` (EvoTorch's policy)."""
    layers: list[torch.nn.Module] = []
    for k, (_, _, fan_in, fan_out) in enumerate(net.layout):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        last = k == len(net.layout) - 1
        layers.append(Bounds(net.scale, net.shift) if last else torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


class EvoTorchEvaluation:
    """EvoTorch's ``VecGymNE`` on the same networks, in this process (its Gymnasium envs
    step one after another; the policy runs on the torch threads of each call). Built and
    warmed up once (the warm-up evaluation creates its envs)."""

    def __init__(self, task: str, size: int, horizon: int, hidden: tuple[int, ...], kwargs):
        from evotorch.neuroevolution import VecGymNE

        _, net, _, params = population(task, size, hidden, **kwargs)
        self.size = size
        self.problem = VecGymNE(
            task,
            same_network(net),
            env_config={"max_episode_steps": horizon, **kwargs},
            max_num_envs=size,
            num_actors=None,
            device="cpu",
        )
        self.batch = self.problem.generate_batch(size)
        self.batch.set_values(torch_layout(net, params))
        self.problem.evaluate(self.problem.generate_batch(size))  # warm-up: builds the envs

    def __call__(self, threads: int) -> tuple[float, float]:
        torch.set_num_threads(threads)
        before = self.problem.interaction_count
        start = time.perf_counter()
        self.problem.evaluate(self.batch)
        elapsed = time.perf_counter() - start
        frames = self.problem.interaction_count - before
        return frames / elapsed, frames / self.size


def measure(
    impl: str, task: str, size: int, horizon: int, kwargs: dict, threads: int,
    step_every_member: bool = False, small_pages: bool = False,
) -> tuple[float, float]:  # fmt: skip
    """(frames/s, mean episode length) of one evaluation by ``impl`` (rlwb or evotorch), in
    its own process: built and warmed up first, then timed once."""
    hidden = (256, 256)
    if impl == "evotorch":
        return EvoTorchEvaluation(task, size, horizon, hidden, kwargs)(threads)
    if small_pages:
        import rlwb.policies

        rlwb.policies.HUGE_PAGE_BYTES = 1 << 62  # weights in torch's own (4 KiB page) memory
    if step_every_member:
        from rlwb.engine.base import Engine

        Engine.step_live_only = False
    ours = RlwbEvaluation(task, size, horizon, hidden, kwargs)
    try:
        return ours(threads)
    finally:
        ours.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["HalfCheetah-v5", "Humanoid-v5"])
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds")
    parser.add_argument(
        "--evotorch-threads", nargs="*", type=int, default=[1, 2],
        help="torch thread counts to time EvoTorch with (none: rlwb only)",
    )  # fmt: skip
    parser.add_argument(
        "--rlwb-threads", type=int, default=1,
        help="torch threads of rlwb's population forward (its physics threads are the "
        "engine's own; the two never run at once)",
    )  # fmt: skip
    parser.add_argument(
        "--no-falls", action="store_true",
        help="Humanoid without fall termination (terminate_when_unhealthy=False in both): "
        "every episode runs the horizon, lying on the floor",
    )  # fmt: skip
    parser.add_argument(
        "--step-every-member", action="store_true",
        help="rollouts keep simulating members that ended (the engine before it learned to "
        "step only live members), for a before/after comparison in one run",
    )  # fmt: skip
    parser.add_argument(
        "--page-ablation", action="store_true",
        help="also time rlwb with its population weights in 4 KiB pages (the default before "
        "huge pages), alternating with the rest",
    )  # fmt: skip
    args = parser.parse_args()
    here = str(pathlib.Path(__file__).resolve())
    print(f"population {args.population}, 2x256 tanh MLP, horizon {args.horizon}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; rlwb: engine "
          f"physics threads + {args.rlwb_threads} torch thread(s); each evaluation in its own "
          "process, alternated")  # fmt: skip
    print("| task | round | rlwb frames/s | EvoTorch config | EvoTorch frames/s | ratio "
          "| mean length (rlwb / EvoTorch) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|")
    for task in args.tasks:
        common = {"task": task, "size": args.population, "horizon": args.horizon,
                  "kwargs": NO_FALLS if args.no_falls and "Humanoid" in task else {}}  # fmt: skip
        contenders = [Contender("rlwb", f"{here}:measure", {
            **common, "impl": "rlwb", "threads": args.rlwb_threads,
            "step_every_member": args.step_every_member})]  # fmt: skip
        if args.page_ablation:
            contenders.append(Contender("rlwb 4k pages", f"{here}:measure", {
                **contenders[0].kwargs, "small_pages": True}))  # fmt: skip
        contenders += [
            Contender(
                f"evotorch {t}", f"{here}:measure", {**common, "impl": "evotorch", "threads": t}
            )
            for t in args.evotorch_threads
        ]
        records = run_apart(contenders, args.rounds, log=lambda line: print(line, flush=True))
        ratios = []
        for r in range(args.rounds):
            mine = {x.name: x for x in records if x.round == r}
            if mine["rlwb"].error is not None:
                print(f"| {task} | {r + 1} | failed: {mine['rlwb'].error} | | | | |")
                continue
            fps, length = mine["rlwb"].value
            best = 0.0
            for threads in args.evotorch_threads:
                theirs = mine[f"evotorch {threads}"]
                name = f"{threads} torch thread{'s' if threads > 1 else ''}"
                if theirs.error is not None:
                    print(f"| {task} | {r + 1} | {fps:,.0f} | {name} | {theirs.error} | | |")
                    continue
                their_fps, their_length = theirs.value
                best = max(best, their_fps)
                print(f"| {task} | {r + 1} | {fps:,.0f} | {name} | {their_fps:,.0f} | "
                      f"{fps / their_fps:.2f} | {length:.0f} / {their_length:.0f} |",
                      flush=True)  # fmt: skip
            small = mine.get("rlwb 4k pages")
            if small is not None and small.error is None:
                print(f"| {task} | {r + 1} | {small.value[0]:,.0f} (4 KiB pages) | | | "
                      f"huge / 4 KiB pages {fps / small.value[0]:.2f} | |", flush=True)  # fmt: skip
            if best == 0.0:
                print(f"| {task} | {r + 1} | {fps:,.0f} | - | - | - | {length:.0f} |", flush=True)
            else:
                ratios.append(fps / best)
        if ratios:
            print(f"{task}: rlwb / best EvoTorch per round: "
                  + ", ".join(f"{x:.2f}" for x in ratios), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
