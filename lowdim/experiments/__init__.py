"""The studies behind the chapters' cached results, a layer above the :mod:`lowdim` core: phase transitions of
subspace recovery, memorization of MoLRG data, reproducibility of image denoisers, the teacher–student measurement of
generalization, the rank ratio of the denoiser Jacobian along sampling, the objective evaluation of LOCO edits and
the invisibility and robustness of Shallow Diffuse watermarks. Each study returns a result that saves
to and loads from a safe ``.npz`` file (:class:`~lowdim.experiments.results.NpzResult`); nothing here draws figures
(see :mod:`lowdim.plotting`)."""

from .cache import data_path
from .jacobian_rank import RankRatio, rank_ratio, trajectory_points
from .memorization import MemorizationSweep, memorization_sweep
from .phase import PhaseTransition, phase_transition
from .reproducibility import ReproducibilitySweep, draw_samples, reproducibility_sweep
from .results import NpzResult, smallest_size
from .students import TeacherStudent, teacher_student, training_curve

__all__ = [
    "MemorizationSweep",
    "NpzResult",
    "PhaseTransition",
    "RankRatio",
    "ReproducibilitySweep",
    "TeacherStudent",
    "data_path",
    "draw_samples",
    "memorization_sweep",
    "phase_transition",
    "rank_ratio",
    "reproducibility_sweep",
    "smallest_size",
    "teacher_student",
    "trajectory_points",
    "training_curve",
]
