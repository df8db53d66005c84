"""lowdim: the computations behind the lecture notes on low-dimensional structure in diffusion models.

Layers, from the bottom: the numerical core (the modules imported here: schedules, forward process, samplers,
Tweedie, closed-form denoisers and MoLRG, subspaces, networks, training, checkpoints, data, similarity scores and the
Jacobian kernel); :mod:`lowdim.experiments`, the studies behind the cached results (its most used names are
re-exported here); and the figure layer, :mod:`lowdim.plotting` and :mod:`lowdim.widgets`, which ``import lowdim``
does not load. ``pyproject.toml``'s import contracts (checked by the tests) keep it so.
"""

from .checkpoints import load_checkpoint, save_checkpoint
from .covering import expected_nn_distance, nn_distance
from .dae import LowRankDAE, train_dae
from .data import digits, render_scenes, render_shapes, scenes, shapes
from .denoisers import (
    ClosedFormDenoiser,
    EmpiricalDenoiser,
    GaussianDenoiser,
    GaussianMixtureDenoiser,
    PosteriorMeanDenoiser,
    ScheduledDenoiser,
    denoiser_agreement,
    denoising_mse,
)
from .editing import EditDirections, edit_directions, loco_edit, project_off, step_along
from .experiments import PhaseTransition, data_path, phase_transition, rank_ratio  # the studies' most used names
from .intrinsic import mle_dimension, pca_dimension, pca_spectrum
from .jacobian import ClosedFormJacobian, effective_rank, jacobian, jacobian_svd, linearity
from .models import MLPDenoiser, UNetDenoiser, build_denoiser
from .molrg import MoLRG, fit_molrg_denoiser, random_molrg
from .pfd import pf_distance
from .samplers import invert, sample, sample_prior, time_grid
from .schedules import VE, VP, Schedule
from .sde import perturb, simulate_forward_sde
from .similarity import RandomFourierEmbedding, gl_score, rp_score
from .subspaces import k_subspaces, pca, subspace_distance, subspace_recovery_error
from .train import dsm_loss, ema_model, fit_denoiser, optimize, train_denoiser
from .tweedie import denoiser_from_score, score_from_denoiser
from .watermark import WatermarkKey, inject_watermark, watermark_key, watermark_score

__all__ = [
    "VE",
    "VP",
    "ClosedFormDenoiser",
    "ClosedFormJacobian",
    "EditDirections",
    "EmpiricalDenoiser",
    "LowRankDAE",
    "PhaseTransition",
    "GaussianDenoiser",
    "GaussianMixtureDenoiser",
    "MLPDenoiser",
    "MoLRG",
    "PosteriorMeanDenoiser",
    "RandomFourierEmbedding",
    "Schedule",
    "ScheduledDenoiser",
    "UNetDenoiser",
    "WatermarkKey",
    "build_denoiser",
    "data_path",
    "denoiser_agreement",
    "denoiser_from_score",
    "denoising_mse",
    "digits",
    "dsm_loss",
    "edit_directions",
    "effective_rank",
    "ema_model",
    "expected_nn_distance",
    "fit_denoiser",
    "fit_molrg_denoiser",
    "gl_score",
    "inject_watermark",
    "invert",
    "jacobian",
    "jacobian_svd",
    "k_subspaces",
    "linearity",
    "loco_edit",
    "load_checkpoint",
    "mle_dimension",
    "nn_distance",
    "optimize",
    "pca",
    "pca_dimension",
    "pca_spectrum",
    "phase_transition",
    "perturb",
    "pf_distance",
    "project_off",
    "random_molrg",
    "rank_ratio",
    "render_scenes",
    "render_shapes",
    "rp_score",
    "sample",
    "sample_prior",
    "scenes",
    "save_checkpoint",
    "score_from_denoiser",
    "shapes",
    "simulate_forward_sde",
    "step_along",
    "subspace_distance",
    "subspace_recovery_error",
    "time_grid",
    "train_dae",
    "train_denoiser",
    "watermark_key",
    "watermark_score",
]
__version__ = "0.1.0"
