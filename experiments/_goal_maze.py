"""Runner settings shared by the goal-maze experiments (``gdg_maze``, ``ddpg_her_maze``)
and the pictures they add to TensorBoard at the end of a run: GDG's bridge points on the
maze, and the learned against the true steps-to-goal of the probe set."""

from rlwb.agents.goal.figures import draw_bridges, probe_figure
from rlwb.agents.goal.gdg import GDG
from rlwb.engine import make_engine
from rlwb.evaluate import run_evaluation
from rlwb.logger import RunLogger
from rlwb.saved_run import read_config
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


def log_goal_pictures(agent, result: TrainResult, logger: RunLogger) -> None:  # noqa: ANN001
    """The experiments' end-of-run hook (``run_experiment(..., on_end=...)``): add the final
    agent's pictures to the run's TensorBoard: ``probe/learned_vs_true`` (a scatter of the
    critic's distance against true steps-to-goal on the probe set) and, for GDG with bridges,
    ``bridges/points`` (the bridge points it plans on its evaluation episodes, drawn on the
    maze)."""
    probe = probe_figure(agent)
    if probe is not None:
        logger.figure("probe/learned_vs_true", probe, result.env_steps)
    if isinstance(agent, GDG) and agent.config.bridges and hasattr(agent.task, "grid"):
        log_bridge_points(agent, result, logger)


def log_bridge_points(agent: GDG, result: TrainResult, logger: RunLogger) -> None:
    """Draw the bridge points ``agent`` plans on its evaluation episodes, and its graph's
    nodes, into the run's TensorBoard as ``bridges/points``."""
    spec = agent.spec
    train = read_config(result.run_dir)["train"]
    engine = make_engine(spec.task_id, train["eval_episodes"], backend=spec.backend,
                         seed=train["eval_seed"], **spec.task_kwargs)  # fmt: skip
    run_evaluation(agent, engine, train["eval_seed"])
    plan = agent.planner(False, engine.num_envs)
    points = plan.recent_bridges()
    title = f"{spec.task_id}: {len(points)} bridge points"
    fig = draw_bridges(agent.task, points, title, nodes=plan.node_points)
    logger.figure("bridges/points", fig, result.env_steps)
