"""True-model MPC on a MuJoCo task: rlwb's batched planner vs Gymnasium env copies vs
pytorch_mppi, same samples x horizon x iterations, in one run.

* ``rlwb``: :class:`rlwb.agents.CEMMPC` -- the CEM plans all candidates as one ``[B, N, H, A]``
  tensor; :class:`rlwb.planners.EngineModel` clones the real state into N members of a
  sibling mujoco engine and rolls out open loop on native threads.
* ``gym-copies``: the same CEM code (:class:`SamplingPlanner`) scoring candidates with N
  ``gymnasium.make`` envs: the real state is loaded into each copy (``mj_setState``, what
  ``set_state`` does) and each copy steps its sequence in a Python loop.
* ``pytorch_mppi``: ``pytorch_mppi.MPPI`` (K = samples, horizon H), the rlwb engine as its
  batched ``dynamics`` (one engine step of all K samples per call), ``iterations`` refinements
  per control step (``command(shift_nominal_trajectory=False)`` after the first). It is MPPI,
  not CEM (its own update rule), so its return is not CEM's; its time is comparable.

All three control the same real environment (an rlwb engine, same seed) for ``--steps``
steps (short episodes by default: the machine is shared and one 1000-step episode of the
Gymnasium way takes many minutes); time is the wall time of planning per control step. Each
method runs in its own process (:mod:`rlwb.apart`), alternated over ``--rounds`` (the
fastest round counts).

    pip install pytorch-mppi   # optional; skipped if missing
    python benchmarks/cem_mpc_bench.py --task HalfCheetah-v5 --steps 100 \
        --samples 100 --horizon 20 --iterations 3
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
import sys
import time
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np
import torch
import tyro

from rlwb import make_engine
from rlwb.agent import act_on
from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig
from rlwb.apart import Contender, by_name, run_apart
from rlwb.engine.mujoco_backend import STATE_SPEC
from rlwb.planners.models import check_plan_shapes
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner


@dataclass
class Args:
    task: str = "HalfCheetah-v5"
    steps: int = 100
    """Control steps per method (episode length)."""
    samples: int = 100
    horizon: int = 20
    iterations: int = 3
    elites: int = 10
    seed: int = 0
    methods: tuple[str, ...] = ("rlwb", "gym-copies", "pytorch_mppi")
    rounds: int = 1
    """Alternating runs of each method, each in its own process (the fastest counts)."""


class GymCopiesModel:
    """The planner's model done the Gymnasium way: N env copies, state loaded into each,
    sequences stepped one env and one step at a time."""

    def __init__(self, task: str, copies: int) -> None:
        self.envs = [gym.make(task) for _ in range(copies)]
        for env in self.envs:
            env.reset(seed=0)

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        b, n, h, _ = check_plan_shapes(states, actions)
        acts = actions.double().numpy()
        returns = np.zeros((b, n))
        for i in range(b):
            row = np.ascontiguousarray(states[i, :-1].numpy())
            for k in range(n):
                env = self.envs[k].unwrapped
                mujoco.mj_setState(env.model, env.data, row, STATE_SPEC)
                mujoco.mj_forward(env.model, env.data)
                for t in range(h):
                    _, reward, terminated, _, _ = env.step(acts[i, k, t])
                    returns[i, k] += reward
                    if terminated:
                        break
        return torch.from_numpy(returns)


def control(act, engine, steps: int) -> tuple[float, float, float]:
    """Run ``steps`` control steps; (return, planning wall seconds per step, planning CPU
    seconds per step, all threads; less sensitive to other users of a shared machine)."""
    obs = engine.reset(seed=0)
    total, plan_time, cpu_time = 0.0, 0.0, 0.0
    for _ in range(steps):
        start, cpu = time.perf_counter(), time.process_time()
        action = act(obs)
        plan_time += time.perf_counter() - start
        cpu_time += time.process_time() - cpu
        obs, reward, terminated, _, _ = engine.step(action)
        total += float(reward.sum())
        if bool(terminated.any()):
            break
    return total, plan_time / steps, cpu_time / steps


def run_rlwb(args: Args, planner_cfg: SamplingConfig) -> tuple[float, float, float]:
    engine = make_engine(args.task, 1, backend="mujoco", seed=args.seed)
    agent = CEMMPC(CEMMPCConfig(planner=planner_cfg, seed=args.seed), engine.spec, "cpu")
    return control(lambda obs: act_on(agent, engine, obs), engine, args.steps)


def run_gym_copies(args: Args, planner_cfg: SamplingConfig) -> tuple[float, float, float]:
    engine = make_engine(args.task, 1, backend="mujoco", seed=args.seed)
    spec = engine.spec
    planner = SamplingPlanner(planner_cfg, spec.action_low, spec.action_high, seed=args.seed)
    model = GymCopiesModel(args.task, args.samples)
    return control(lambda obs: planner.plan(model, engine.get_state()), engine, args.steps)


def run_pytorch_mppi(args: Args) -> tuple[float, float, float]:
    from pytorch_mppi import MPPI

    engine = make_engine(args.task, 1, backend="mujoco", seed=args.seed)
    sim = engine.spawn(args.samples, seed=args.seed)
    last_reward = {}

    def dynamics(state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        sim.set_state(state)  # an engine step from the states MPPI hands over
        _, reward, _, _, _ = sim.step(u.float())  # (HalfCheetah never terminates)
        last_reward["r"] = reward.double()
        return sim.get_state()

    def running_cost(state: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return -last_reward["r"]

    spec = engine.spec
    sigma = ((spec.action_high - spec.action_low) / 2 * 0.5) ** 2  # std 0.5 normalised, as CEM
    mppi = MPPI(
        dynamics,
        running_cost,
        nx=engine.state_dim,
        noise_sigma=torch.diag(sigma.double()),
        num_samples=args.samples,
        horizon=args.horizon,
        lambda_=1.0,
        u_min=spec.action_low.double(),
        u_max=spec.action_high.double(),
    )

    def act(obs: torch.Tensor) -> torch.Tensor:
        state = engine.get_state()[0]
        action = mppi.command(state)
        for _ in range(args.iterations - 1):
            action = mppi.command(state, shift_nominal_trajectory=False)
        return action.float()[None]

    return control(act, engine, args.steps)


def run_method(method: str, args: dict) -> tuple[float, float, float]:
    """(return, planning s / step wall, CPU s / step) of one method, in its own process."""
    torch.set_num_threads(1)
    settings = Args(**{**args, "methods": tuple(args["methods"])})
    planner_cfg = SamplingConfig(
        samples=settings.samples, horizon=settings.horizon, iterations=settings.iterations,
        elites=settings.elites,
    )  # fmt: skip
    if method == "pytorch_mppi":
        return run_pytorch_mppi(settings)
    if method == "gym-copies":
        return run_gym_copies(settings, planner_cfg)
    return run_rlwb(settings, planner_cfg)


def main(args: Args) -> None:
    print(
        f"# {args.task}: {args.samples} samples x {args.horizon} horizon x {args.iterations} "
        f"iterations, {args.steps} control steps, seed {args.seed}; {platform.processor() or ''} "
        f"{platform.machine()}, torch threads 1, load average {os.getloadavg()[0]:.2f}; each "
        f"method in its own process, {args.rounds} alternating round(s)"
    )
    here = str(pathlib.Path(__file__).resolve())
    contenders = [
        Contender(m, f"{here}:run_method", {"method": m, "args": dataclasses.asdict(args)})
        for m in args.methods
    ]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows = by_name(
        run_apart(contenders, args.rounds, log=log), best=lambda v: min(v, key=lambda r: r[1])
    )
    print("| method | return | planning ms / step (wall) | CPU ms / step | wall vs rlwb |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        if rows[method] is None:
            why = (
                "not installed (pip install pytorch-mppi)" if method == "pytorch_mppi" else "failed"
            )
            print(f"| {method} | {why} | | | |")
            continue
        ret, sec, cpu = rows[method]
        ratio = sec / rows["rlwb"][1] if rows.get("rlwb") else float("nan")
        print(f"| {method} | {ret:.1f} | {1000 * sec:.1f} | {1000 * cpu:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main(tyro.cli(Args))
