"""Runner settings shared by the goal-maze experiments (``gdg_maze``, ``ddpg_her_maze``)
and GDG's picture of its bridge points."""

import torch
from torch.utils.tensorboard import SummaryWriter

from rlwb import checkpoint
from rlwb.agents.bridges import draw_bridges
from rlwb.agents.gdg import GDG, GDGConfig
from rlwb.config import from_dict
from rlwb.engine import make_engine
from rlwb.evaluate import run_evaluation, spec_from_dict
from rlwb.train import TrainConfig, TrainResult


def maze_train_config() -> TrainConfig:
    """Open goal maze, 4 members, episodes that end on success (eval return = success
        rate), goals at least 2 cells from the start (a share ``goal_cell_prob`` from the map's
    ``g`` cells), half an update per env step."""
    return TrainConfig(
        task="PointMaze-Open-Goal-v0",
        backend="torch",
        num_envs=4,
        total_steps=10_000,
        learning_starts=1_000,
        updates_per_step=0.5,
        eval_every=2_500,
        eval_episodes=50,
        checkpoint_every=5_000,
        task_kwargs={
            "min_goal_distance": 2.0,
            "max_episode_steps": 50,
            "terminate_on_success": True,
            "goal_cell_prob": 0.0,
        },
    )


def log_bridge_points(result: TrainResult) -> None:
    """Draw the bridge points the final GDG agent plans on its evaluation episodes into the
    run's TensorBoard as ``bridges/points``."""
    if result.checkpoint is None:
        return
    payload = checkpoint.load(result.checkpoint)  # weights only: never runs code
    spec = spec_from_dict(payload["spec"], torch.device("cpu"))
    agent = GDG(from_dict(GDGConfig, payload["agent_config"]), spec, "cpu")
    agent.load_state_dict(payload["agent"])
    if not agent.config.bridges:
        return
    train = payload["train_config"]
    engine = make_engine(spec.task_id, train["eval_episodes"], backend="torch",
                         seed=train["eval_seed"], **spec.task_kwargs)  # fmt: skip
    run_evaluation(agent, engine, train["eval_seed"])
    points = agent.planner(False, engine.num_envs).recent_bridges()
    fig = draw_bridges(agent.task, points, f"{spec.task_id}: {len(points)} bridge points")
    with SummaryWriter(str(result.run_dir)) as writer:
        writer.add_figure("bridges/points", fig, result.env_steps)
