"""Agents: each a plain class the runner (``rlwb.train``) drives."""

from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.pets import PETS, PETSConfig

__all__ = ["CEMMPC", "CEMMPCConfig", "DDPG", "DDPGConfig", "PETS", "PETSConfig"]
