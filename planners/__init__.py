"""Planners and the models they plan with.

``models``: the one-method model protocol and the true-dynamics ``EngineModel``;
``sampling``: CEM / MPPI / iCEM / random shooting over plans ``[B, N, H, A]``;
``gradient``: Adam on the action sequence through a differentiable model;
``ensemble``: PETS' probabilistic ensemble and trajectory sampling;
``latent``: the latent-model slot TD-MPC fills; ``task_rewards``: rewards from observations.
"""

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
    "ProbabilisticEnsemble",
    "SamplingConfig",
    "SamplingPlanner",
]
