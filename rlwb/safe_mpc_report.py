"""Closed-loop traces and plots of a controller on the quadrotor tasks (the safe CEM-MPC
experiments' report, and what ``benchmarks/safe_mpc_bench.py`` measures).

:func:`closed_loop` runs an agent for one episode per engine member and records what the
plots and the benchmark need; :func:`write_report` is the experiments' end-of-run hook: it
makes the figures of the final agent (trajectories vs reference, tracking error, distance to
the nearest obstacle, filter interventions), saves them under ``<run>/plots/`` and adds them
(and the summary numbers) to the run's TensorBoard events.
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from rlwb import make_engine
from rlwb.agent import Agent, act_on
from rlwb.logger import RunLogger
from rlwb.saved_run import read_config

if TYPE_CHECKING:
    from rlwb.train import TrainResult


@dataclass
class Trace:
    """One episode per member: ``pos``/``ref`` ``[N, T, 3]``, per-step ``[N, T]`` tracking
    error, clearance, collision and filter intervention, and seconds per control step."""

    pos: torch.Tensor
    ref: torch.Tensor
    error: torch.Tensor
    clearance: torch.Tensor
    collision: torch.Tensor
    intervened: torch.Tensor
    seconds_per_step: float
    obstacles: torch.Tensor

    def summary(self) -> dict[str, float]:
        """Tracking RMSE (m), minimum clearance (m), collided episodes, collision steps,
        intervention rate and control time per step (ms)."""
        return {
            "tracking_rmse": float(self.error.square().mean().sqrt()),
            "min_clearance": float(self.clearance.min()),
            "collided_episodes": int((self.collision.sum(1) > 0).sum()),
            "collision_steps": int(self.collision.sum()),
            "intervention_rate": float(self.intervened.float().mean()),
            "ms_per_step": 1000 * self.seconds_per_step,
        }


def closed_loop(
    agent: Agent,
    task: str,
    episodes: int,
    seed: int,
    task_kwargs: dict | None = None,
    horizon: int | None = None,
) -> Trace:
    """Run ``agent`` deterministically for one episode (or ``horizon`` steps) on each of
    ``episodes`` members."""
    engine = make_engine(task, episodes, backend="torch", seed=seed, **(task_kwargs or {}))
    flags: list[torch.Tensor] = []
    clock = [0.0]

    def policy(obs: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        action = act_on(agent, engine, obs, explore=False)
        clock[0] += time.perf_counter() - start
        ctx = getattr(agent, "contexts", {}).get(episodes)
        flags.append(ctx.intervened.clone() if ctx is not None else torch.zeros(episodes))
        return action.to(engine.device)

    engine.reset(seed=seed)
    with torch.no_grad():
        out = engine.rollout(policy, horizon=horizon, record_obs=True)
    states = out.observations[:, 1:]
    return Trace(
        pos=states[..., 0:3].cpu(),
        ref=states[..., 6:9].cpu(),
        error=out.infos["tracking_error"].cpu(),
        clearance=out.infos["min_obstacle_distance"].cpu(),
        collision=out.infos["collision"].cpu(),
        intervened=torch.stack(flags, 1).bool().cpu(),
        seconds_per_step=clock[0] / max(len(flags), 1),
        obstacles=engine.task.obstacle_tensor.cpu(),
    )


def figures(trace: Trace, dt: float) -> dict[str, object]:
    """Matplotlib figures of a trace, by TensorBoard tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = torch.arange(1, trace.error.shape[1] + 1) * dt
    figs = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(trace.ref[0, :, 0], trace.ref[0, :, 1], "k--", label="reference")
    for i in range(trace.pos.shape[0]):
        ax.plot(
            trace.pos[i, :, 0], trace.pos[i, :, 1], lw=1, label=f"episode {i}" if i < 4 else None
        )
    for _kind, cx, cy, _, r in trace.obstacles.tolist():
        ax.add_patch(plt.Circle((cx, cy), r, color="tab:red", alpha=0.4))
    ax.set(xlabel="x (m)", ylabel="y (m)", aspect="equal", title="trajectories vs reference")
    ax.legend(fontsize=7)
    figs["trajectories"] = fig
    for key, values, label in (
        ("tracking_error", trace.error, "tracking error (m)"),
        ("obstacle_distance", trace.clearance, "clearance to nearest obstacle (m)"),
        ("filter_interventions", trace.intervened.float().cumsum(1), "filter interventions (cum.)"),
    ):
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(t, values.T, lw=1)
        if key == "obstacle_distance":
            ax.axhline(0, color="tab:red", lw=1)
        ax.set(xlabel="time (s)", ylabel=label)
        fig.tight_layout()
        figs[key] = fig
    return figs


def write_report(
    agent: Agent, result: TrainResult, logger: RunLogger, episodes: int = 4
) -> dict[str, float]:
    """Figures and summary of a finished run's final agent (``episodes`` episodes at most
    the run's ``eval_episodes``, from its evaluation seed), into its folder and TensorBoard:
    ``run_experiment(..., on_end=write_report)``."""
    train = read_config(result.run_dir)["train"]
    episodes = min(episodes, int(train["eval_episodes"]))
    trace = closed_loop(
        agent, train["task"], episodes, int(train["eval_seed"]), train["task_kwargs"],
        train.get("eval_horizon"),
    )  # fmt: skip
    folder = pathlib.Path(result.run_dir) / "plots"
    folder.mkdir(exist_ok=True)
    for tag, fig in figures(trace, float(agent.spec.dt)).items():
        fig.savefig(folder / f"{tag}.png", dpi=100)
        logger.figure(f"safe_mpc/{tag}", fig, result.env_steps)
    summary = trace.summary()
    for key, value in summary.items():
        logger.scalar(f"safe_mpc/{key}", value, result.env_steps)
    logger.print(
        "closed loop: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items())
        + f" (plots: {folder})"
    )  # fmt: skip
    return summary
