"""Deep GA population evaluation speed: rlwb against EvoTorch, same network, population, task.

One evaluation = every network of a population runs one episode (capped at ``--horizon``
steps). rlwb: the Deep GA's evaluator (one closed-loop rollout of the ``mujoco`` engine,
member i driven by network i, batched matmuls). EvoTorch (``pip install evotorch``):
``VecGymNE`` with the same 2 x 256 tanh MLP on ``--population`` Gymnasium envs, no Ray
actors. Both evaluate the same parameter vectors (our flat layout mapped to ``nn.Linear``'s);
frames are executed env steps. Humanoid's fall termination is off by default
(``terminate_when_unhealthy=False`` in both): random networks fall within ~30 steps, and a
rollout's cost is set by its longest episode, which differs between the libraries' start
states; without falls both run every episode to the horizon. Same torch threads for both.

    python benchmarks/deep_ga_bench.py                         # HalfCheetah-v5, Humanoid-v5
    python benchmarks/deep_ga_bench.py --tasks Humanoid-v5 --population 512 --horizon 200
"""

from __future__ import annotations

import argparse
import time

import torch

from rlwb.agents.ga_evaluation import LocalEvaluator
from rlwb.agents.ga_genome import Genomes
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


def rlwb_fps(
    task: str, size: int, horizon: int, hidden: tuple[int, ...], kwargs: dict
) -> tuple[float, float]:
    engine, net, seeds, params = population(task, size, hidden, **kwargs)
    evaluator = LocalEvaluator(engine.spawn, net, horizon)
    evaluator.evaluate(params[:2], [[s] for s in seeds[:2]], 1, seed=0)  # warm-up
    start = time.perf_counter()
    result = evaluator.evaluate(params, [[s] for s in seeds], 1, seed=1)
    elapsed = time.perf_counter() - start
    evaluator.close()
    return result.frames / elapsed, float(result.lengths.to(torch.float64).mean())


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


def evotorch_fps(
    task: str, size: int, horizon: int, hidden: tuple[int, ...], kwargs: dict
) -> tuple[float, float]:
    from evotorch.neuroevolution import VecGymNE

    _, net, _, params = population(task, size, hidden, **kwargs)
    problem = VecGymNE(
        task,
        same_network(net),
        env_config={"max_episode_steps": horizon, **kwargs},
        max_num_envs=size,
        num_actors=None,
        device="cpu",
    )
    problem.evaluate(problem.generate_batch(size))  # warm-up: builds the envs
    batch, before = problem.generate_batch(size), problem.interaction_count
    batch.set_values(torch_layout(net, params))
    start = time.perf_counter()
    problem.evaluate(batch)
    elapsed = time.perf_counter() - start
    frames = problem.interaction_count - before
    return frames / elapsed, frames / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["HalfCheetah-v5", "Humanoid-v5"])
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-evotorch", action="store_true")
    parser.add_argument(
        "--terminate", action="store_true",
        help="keep Humanoid's fall termination (default off: every episode runs the horizon, "
        "so both libraries do the same work; random networks fall within ~30 steps)",
    )  # fmt: skip
    parser.add_argument(
        "--step-every-member", action="store_true",
        help="rollouts keep simulating members that ended (the engine before it learned to "
        "step only live members), for a before/after comparison in one run",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.step_every_member:
        from rlwb.engine.base import Engine

        Engine.step_live_only = False
    hidden = (256, 256)
    print(f"population {args.population}, 2x256 tanh MLP, horizon {args.horizon}, "
          f"{args.threads} torch threads")  # fmt: skip
    print("| task | rlwb frames/s | EvoTorch frames/s | ratio | mean length (rlwb/EvoTorch) |")
    print("|---|---:|---:|---:|---:|")
    for task in args.tasks:
        kwargs = {} if args.terminate or "Humanoid" not in task else NO_FALLS
        ours, length = rlwb_fps(task, args.population, args.horizon, hidden, kwargs)
        theirs, their_length = (
            (float("nan"), float("nan")) if args.no_evotorch
            else evotorch_fps(task, args.population, args.horizon, hidden, kwargs)
        )  # fmt: skip
        ratio = ours / theirs
        lengths = f"{length:.0f} / {their_length:.0f}"
        print(f"| {task} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f} | {lengths} |", flush=True)


if __name__ == "__main__":
    main()
