"""lowdim: the computations behind the lecture notes on low-dimensional structure in diffusion models."""

from .covering import expected_nn_distance, nn_distance
from .dae import LowRankDAE, train_dae
from .data import data_path, digits
from .denoisers import (
    EmpiricalDenoiser,
    GaussianDenoiser,
    GaussianMixtureDenoiser,
    PosteriorMeanDenoiser,
    denoising_mse,
)
from .intrinsic import mle_dimension, pca_dimension, pca_spectrum
from .models import MLPDenoiser
from .molrg import MoLRG, fit_molrg, random_molrg
from .phase import PhaseTransition, phase_transition
from .samplers import sample, sample_prior, time_grid
from .schedules import VE, VP, Schedule
from .sde import perturb, simulate_forward_sde
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
    "Schedule",
    "data_path",
    "denoiser_from_score",
    "denoising_mse",
    "digits",
    "dsm_loss",
    "expected_nn_distance",
    "fit_molrg",
    "k_subspaces",
    "mle_dimension",
    "nn_distance",
    "pca",
    "pca_dimension",
    "pca_spectrum",
    "phase_transition",
    "perturb",
    "random_molrg",
    "sample",
    "sample_prior",
    "score_from_denoiser",
    "simulate_forward_sde",
    "subspace_distance",
    "subspace_recovery_error",
    "time_grid",
    "train_dae",
    "train_denoiser",
]
__version__ = "0.1.0"
