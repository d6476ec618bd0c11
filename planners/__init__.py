"""Planners and the models they plan with; task-independent (no agent or task imports).

``base``: the :class:`Planner` protocol and the parts every planner shares;
``models``: the one-method :class:`Model` protocol and the true-dynamics ``EngineModel``;
``sampling``: CEM / MPPI / iCEM / random shooting over plans ``[B, N, H, A]``;
``gradient``: Adam on the action sequence through a differentiable model;
``ensemble``: PETS' probabilistic ensemble and trajectory sampling;
``latent``: the latent-model slot TD-MPC fills; ``gp``: a sliding-window GP;
``safety``: the CLF/CBF minimal-intervention filter.
"""

from rlwb.planners.base import Planner, PlannerBase
from rlwb.planners.ensemble import EnsembleConfig, EnsembleModel, ProbabilisticEnsemble
from rlwb.planners.gradient import GradientConfig, GradientPlanner
from rlwb.planners.latent import LatentModel, LatentWorld
from rlwb.planners.models import EngineModel, Model
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner

__all__ = [
    "EngineModel",
    "EnsembleConfig",
    "EnsembleModel",
    "GradientConfig",
    "GradientPlanner",
    "LatentModel",
    "LatentWorld",
    "Model",
    "Planner",
    "PlannerBase",
    "ProbabilisticEnsemble",
    "SamplingConfig",
    "SamplingPlanner",
]
