"""lowdim: the computations behind the lecture notes on low-dimensional structure in diffusion models."""

from .data import digits
from .denoisers import EmpiricalDenoiser, GaussianDenoiser, PosteriorMeanDenoiser
from .models import MLPDenoiser
from .molrg import MoLRG, random_molrg
from .samplers import sample, sample_prior, time_grid
from .schedules import VE, VP, Schedule
from .sde import perturb, simulate_forward_sde
from .train import dsm_loss, train_denoiser
from .tweedie import denoiser_from_score, score_from_denoiser

__all__ = [
    "VE",
    "VP",
    "EmpiricalDenoiser",
    "GaussianDenoiser",
    "MLPDenoiser",
    "MoLRG",
    "PosteriorMeanDenoiser",
    "Schedule",
    "denoiser_from_score",
    "digits",
    "dsm_loss",
    "perturb",
    "random_molrg",
    "sample",
    "sample_prior",
    "score_from_denoiser",
    "simulate_forward_sde",
    "time_grid",
    "train_denoiser",
]
__version__ = "0.1.0"
