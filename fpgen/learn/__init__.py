r"""fpgen.learn — the torch layer: learn scores and velocities, plug them back into the solvers.

Import it explicitly (``import fpgen.learn``); ``import fpgen`` never imports torch.  Install
with the ``learn`` extra (``pip install "fpgen[learn]"``).  The README pins torch's version;
whether pip fetches a CPU or a CUDA build depends on the index (PyPI's Linux wheels are CUDA
builds): on a machine without a GPU install the CPU build first,
``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu``.

**Time convention.** t = 0 is the data and time runs toward the noise / equilibrium; paths on
[0, 1] have the data at t = 0 and the noise at t = 1; generation runs the reversed dynamics from
t = T back to 0.  :func:`~fpgen.learn.paths.flip_time` and
:class:`~fpgen.learn.paths.NoiseToDataConvention` adapt models written for the "noise at 0,
data at 1" convention of flow-matching papers.

Pieces, one job each:

==================  ===========================================================================
``paths``           Gaussian paths of fpgen equations (OU, linear Fokker–Planck, kinetic / CLD),
                    the linear / OT path, the BGK interpolant; the SDE of a path
``conversions``     score <-> noise <-> data <-> velocity on Gaussian paths (pure functions)
``losses``          denoising score matching (sigma^2 / likelihood weightings, hybrid for
                    kinetic), flow matching (with minibatch OT coupling)
``ddpm``            DDPM noise prediction, the ancestral sampler, the variational bound
``discrete``        D3PM (x0-prediction, posterior, hybrid loss, bound), concrete-score models
``guidance``        classifier-free guidance
``models``          MLP with time embedding, a small CNN for 8x8 images, a discrete MLP
``training``        seeded, device-aware training (cosine rate, EMA weights by default) with
                    checkpoints (read weights-only)
``adapters``        a model as the numpy / CuPy callable ``score(x, t)`` / ``velocity(x, t)``
``jacobians``       the Jacobian of a learned score by autograd (for ``fpgen.guidance``)
``likelihood``      NLL through the probability-flow ODE (exact or Hutchinson divergence)
``reference``       exact models of Gaussian-mixture data (the yardstick of the tests)
``sampling``        a small fixed-step reference sampler over ``drift`` / ``diffusion``
==================  ===========================================================================
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "fpgen.learn needs torch: `pip install \"fpgen[learn]\"` (without a GPU, first the CPU "
        "build: `pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`)"
    ) from exc

from . import conversions
from .adapters import (
    ModelFunction,
    denoiser_ratio_function,
    ratio_function,
    score_function,
    velocity_function,
)
from .coupling import ot_coupling
from .ddpm import DDPMNoisePrediction, DDPMSchedule, ddpm_nll_bound, ddpm_sample
from .discrete import D3PM, ConcreteScoreMatching, ratios_from_x0_probs
from .guidance import ClassifierFreeGuidance, drop_labels
from .jacobians import score_jacobian_function
from .likelihood import NLLResult, divergence, model_nll, ode_nll
from .losses import DenoisingScoreMatching, FlowMatching, HybridScoreMatching, Loss
from .models import MLP, DiscreteMLP, SinusoidalEmbedding, SmallCNN
from .paths import (
    AffinePath,
    BGKPath,
    KineticPath,
    LinearPath,
    MatrixGaussianPath,
    NoiseToDataConvention,
    OUPath,
    Path,
    PathSample,
    PathSDE,
    diffusion_path,
    flip_time,
)
from .reference import MixtureReference, ScoreFunctionModel
from .sampling import Trajectory, integrate, integrate_chain
from .training import (
    CheckpointError,
    NonFiniteLossError,
    Trainer,
    TrainHistory,
    fit,
    load_model,
    read_checkpoint,
)

__all__ = [
    "conversions",
    "Path",
    "PathSample",
    "AffinePath",
    "OUPath",
    "LinearPath",
    "BGKPath",
    "MatrixGaussianPath",
    "KineticPath",
    "PathSDE",
    "diffusion_path",
    "flip_time",
    "NoiseToDataConvention",
    "Loss",
    "DenoisingScoreMatching",
    "HybridScoreMatching",
    "FlowMatching",
    "ot_coupling",
    "DDPMSchedule",
    "DDPMNoisePrediction",
    "ddpm_sample",
    "ddpm_nll_bound",
    "D3PM",
    "ConcreteScoreMatching",
    "ratios_from_x0_probs",
    "ClassifierFreeGuidance",
    "drop_labels",
    "MLP",
    "SmallCNN",
    "DiscreteMLP",
    "SinusoidalEmbedding",
    "Trainer",
    "fit",
    "load_model",
    "read_checkpoint",
    "CheckpointError",
    "NonFiniteLossError",
    "TrainHistory",
    "ModelFunction",
    "score_function",
    "velocity_function",
    "ratio_function",
    "denoiser_ratio_function",
    "score_jacobian_function",
    "NLLResult",
    "divergence",
    "ode_nll",
    "model_nll",
    "MixtureReference",
    "ScoreFunctionModel",
    "integrate",
    "integrate_chain",
    "Trajectory",
]
