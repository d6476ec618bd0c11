"""rlwb: a reinforcement-learning control workbench.

One vectorized rollout engine (``rlwb.engine.make_engine``) over MuJoCo, MuJoCo Warp,
torch and Gymnasium backends; agents in ``rlwb.agents``; planners in ``rlwb.planners``;
the training runner in ``rlwb.train``.
"""

from rlwb.engine import Engine, RolloutResult, make_engine
from rlwb.errors import RlwbError

__all__ = ["Engine", "RolloutResult", "make_engine", "RlwbError"]
__version__ = "0.1.0"
