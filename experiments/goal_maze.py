"""Runner settings shared by the goal-maze experiments (``gdg_maze``, ``ddpg_her_maze``)."""

from rlwb.train import TrainConfig


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
        },
    )
