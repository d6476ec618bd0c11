"""Goal-reaching agents on relabelled goals: GDG (goal-distance gradient with bridge points) and
its baseline DDPG + HER, over one shared goal-conditioned base."""

from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
from rlwb.agents.goal.gdg import GDG, GDGConfig

__all__ = ["DDPGHER", "DDPGHERConfig", "GDG", "GDGConfig"]
