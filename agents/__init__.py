"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.deep_ga import DeepGA, DeepGAConfig
from rlwb.agents.pets import PETS, PETSConfig
from rlwb.agents.safe_cem_mpc import SafeCEMMPC, SafeCEMMPCConfig

__all__ = [
    "CEMMPC",
    "CEMMPCConfig",
    "DDPG",
    "DDPGConfig",
    "DeepGA",
    "DeepGAConfig",
    "PETS",
    "PETSConfig",
    "SafeCEMMPC",
    "SafeCEMMPCConfig",
]
