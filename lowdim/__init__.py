"""lowdim: the computations behind the lecture notes on low-dimensional structure in diffusion models."""

from .checkpoints import ema_model, load_checkpoint, save_checkpoint
from .covering import expected_nn_distance, nn_distance
from .dae import LowRankDAE, train_dae
from .data import data_path, digits, render_shapes, shapes
from .denoisers import (
    EmpiricalDenoiser,
    GaussianDenoiser,
    GaussianMixtureDenoiser,
    PosteriorMeanDenoiser,
    denoiser_agreement,
    denoising_mse,
)
from .intrinsic import mle_dimension, pca_dimension, pca_spectrum
from .jacobian import effective_rank, jacobian, jacobian_svd, linearity, rank_ratio
from .models import MLPDenoiser, UNetDenoiser
from .molrg import MoLRG, fit_molrg, random_molrg
from .pfd import pf_distance
from .phase import PhaseTransition, phase_transition
from .samplers import sample, sample_prior, time_grid
from .schedules import VE, VP, Schedule
from .sde import perturb, simulate_forward_sde
from .similarity import RandomFourierEmbedding, gl_score, rp_score
from .subspaces import k_subspaces, pca, subspace_distance, subspace_recovery_error
from .train import dsm_loss, train_denoiser
from .tweedie import denoiser_from_score, score_from_denoiser

__all__ = [
    "VE",
    "VP",
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
    "UNetDenoiser",
    "data_path",
    "denoiser_agreement",
    "denoiser_from_score",
    "denoising_mse",
    "digits",
    "dsm_loss",
    "effective_rank",
    "ema_model",
    "expected_nn_distance",
    "fit_molrg",
    "gl_score",
    "jacobian",
    "jacobian_svd",
    "k_subspaces",
    "linearity",
    "load_checkpoint",
    "mle_dimension",
    "nn_distance",
    "pca",
    "pca_dimension",
    "pca_spectrum",
    "phase_transition",
    "perturb",
    "pf_distance",
    "random_molrg",
    "rank_ratio",
    "render_shapes",
    "rp_score",
    "sample",
    "sample_prior",
    "save_checkpoint",
    "score_from_denoiser",
    "shapes",
    "simulate_forward_sde",
    "subspace_distance",
    "subspace_recovery_error",
    "time_grid",
    "train_dae",
    "train_denoiser",
]
__version__ = "0.1.0"
