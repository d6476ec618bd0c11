"""Runner settings shared by the goal-maze experiments (``gdg_maze``, ``ddpg_her_maze``)
and the pictures they add to TensorBoard at the end of a run: GDG's bridge points on the
maze, and the learned against the true steps-to-goal of the probe set."""

import torch
from torch.utils.tensorboard import SummaryWriter

from rlwb import checkpoint
from rlwb.agents.goal.figures import draw_bridges, probe_figure
from rlwb.agents.goal.gdg import GDG
from rlwb.config import from_dict
from rlwb.engine import make_engine
from rlwb.evaluate import run_evaluation, spec_from_dict
from rlwb.train import TrainConfig, TrainResult


def goal_training_steps(agent, engine, steps: int, warmup: int, seed: int):
    """The plain training loop of the goal benchmarks and tests: uniform random actions for
    ``warmup`` env steps, then exploring actions and ``num_envs // 2`` updates per batch
    step (half an update per env step); yields the env step count after each batch step."""
    members = engine.num_envs
    gen = torch.Generator().manual_seed(seed)
    obs = engine.reset(seed=seed)
    agent.episode_start(torch.ones(members, dtype=torch.bool))
    for step in range(members, steps + 1, members):
        if step <= warmup:
            action = torch.rand(members, engine.spec.action_dim, generator=gen) * 2 - 1
            action = action * agent.action_scale + agent.action_bias
        else:
            action = agent.act(obs, explore=True)
        nxt, reward, term, trunc, info = engine.step(action)
        real = torch.where(info["done"][:, None], info["final_obs"], nxt)
        agent.observe(obs, action, reward, real, term, trunc)
        obs = nxt
        if bool(info["done"].any()):
            agent.episode_start(info["done"])
        if step > warmup:
            agent.update(members // 2)
        yield step


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


def robotics_train_config() -> TrainConfig:
    """Gymnasium-Robotics' mazes (``pip install -e ".[robotics]"``, gym backend): the same
    runner settings with the env's own goals, resets and time limit, episodes ending on
    success (``continuing_task=False``), fewer evaluation episodes (each is a Gymnasium env
    stepped in Python) and a longer random warm-up (AntMaze's episodes are 700 steps)."""
    config = maze_train_config()
    config.backend = "gym"
    config.learning_starts = 3_000
    config.eval_episodes = 10
    config.task_kwargs = {"continuing_task": False}
    return config


def task_presets(config: type) -> dict[str, type]:
    """``--train.task`` presets of a goal-maze experiment's ``Config``: every
    Gymnasium-Robotics maze gets :func:`robotics_train_config` (the point mazes' task
    arguments are not theirs)."""
    from dataclasses import dataclass, field

    from rlwb.envs.robotics import IDS

    @dataclass
    class RoboticsConfig(config):
        train: TrainConfig = field(default_factory=robotics_train_config)

    RoboticsConfig.__module__ = config.__module__  # the run is named after the experiment
    return dict.fromkeys(IDS, RoboticsConfig)


def log_goal_pictures(result: TrainResult, agent_class=GDG) -> None:
    """Add the final agent's pictures to the run's TensorBoard: ``probe/learned_vs_true``
    (a scatter of the critic's distance against true steps-to-goal on the probe set) and,
    for GDG with bridges, ``bridges/points`` (the bridge points it plans on its evaluation
    episodes, drawn on the maze)."""
    if result.checkpoint is None:
        return
    payload = checkpoint.load(result.checkpoint)  # weights only: never runs code
    spec = spec_from_dict(payload["spec"], torch.device("cpu"))
    agent = agent_class(from_dict(agent_class.config_class, payload["agent_config"]), spec, "cpu")
    agent.load_state_dict(payload["agent"])
    probe = probe_figure(agent)
    if probe is not None:
        with SummaryWriter(str(result.run_dir)) as writer:
            writer.add_figure("probe/learned_vs_true", probe, result.env_steps)
    if isinstance(agent, GDG) and agent.config.bridges and hasattr(agent.task, "grid"):
        log_bridge_points(agent, payload, result)


def log_bridge_points(agent: GDG, payload: dict, result: TrainResult) -> None:
    """Draw the bridge points ``agent`` plans on its evaluation episodes, and its graph's
    nodes, into the run's TensorBoard as ``bridges/points``."""
    spec = agent.spec
    train = payload["train_config"]
    engine = make_engine(spec.task_id, train["eval_episodes"], backend=spec.backend,
                         seed=train["eval_seed"], **spec.task_kwargs)  # fmt: skip
    run_evaluation(agent, engine, train["eval_seed"])
    plan = agent.planner(False, engine.num_envs)
    points = plan.recent_bridges()
    title = f"{spec.task_id}: {len(points)} bridge points"
    fig = draw_bridges(agent.task, points, title, nodes=plan.node_points)
    with SummaryWriter(str(result.run_dir)) as writer:
        writer.add_figure("bridges/points", fig, result.env_steps)
