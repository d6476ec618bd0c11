"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
from rlwb.agents.goal.gdg import GDG, GDGConfig
from rlwb.agents.pets import PETS, PETSConfig
from rlwb.agents.safe_cem_mpc.agent import SafeCEMMPC, SafeCEMMPCConfig
from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig

__all__ = [
    "CEMMPC",
    "CEMMPCConfig",
    "DDPG",
    "DDPGConfig",
    "DDPGHER",
    "DDPGHERConfig",
    "DeepGA",
    "DeepGAConfig",
    "GDG",
    "GDGConfig",
    "PETS",
    "PETSConfig",
    "SafeCEMMPC",
    "SafeCEMMPCConfig",
    "TDMPC",
    "TDMPCConfig",
]
