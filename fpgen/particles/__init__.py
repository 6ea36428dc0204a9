r"""Particle ensembles: ``simulate(equation, x0, t_span, *, dt, method, backend, seed, ...)``.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium; a
reversed equation runs in its own time :math:`s = T - t`, from 0 to T.

Solver table (strong / weak order of the error at a fixed time as :math:`h \to 0`;
"exact" = no time-step error), generated from the registered methods
(:func:`solver_table`; each method is one object in :mod:`fpgen.particles.methods`):

{table}

Every method runs on every backend (``numpy``, ``numba``, ``cuda``).

``docs/solvers.md`` has the full table with the schemes and references.

The ``numba`` backend fuses the whole time loop into one parallel kernel per solve for the
linear equations, BGK toward Gaussian / Gaussian-mixture / categorical laws, Markov chains, and
equations whose drift, diffusion or velocity are :func:`pointwise` functions (scalar math per
particle); anything else runs on NumPy with a one-line :class:`BackendFallbackWarning`.  The ``cuda``
backend runs the same kernels on a GPU (numba-CUDA, one thread per particle, the per-particle
steps of :mod:`fpgen.kernels.particle_steps`; CuPy arrays and torch CUDA tensors in and out;
:mod:`fpgen.particles.execution.cuda`).  The backends draw the same counter-based random numbers
(:mod:`fpgen.kernels.rng`), so their states agree up to rounding, and neither the thread
count nor the chunk size changes a result.

Walls (:class:`Walls`, ``simulate(..., walls=...)``): reflecting (specular for kinetic
states), periodic and absorbing sides applied after every step on every backend, with exit times
and the survivors' statistics; see :mod:`fpgen.particles.walls`.

References: Kloeden & Platen, *Numerical Solution of Stochastic Differential Equations* (1992);
Gillespie, J. Phys. Chem. 81 (1977) 2340; Lewis & Shedler, Naval Res. Logist. Q. 26 (1979) 403;
Chan, Golub & LeVeque, "Updating formulae and a pairwise algorithm for computing sample
variances" (1979).
"""

from ._simulate import BackendFallbackWarning, simulate
from .methods import METHODS, Blob, MeanField, Method, fitting_methods, solver_table
from .noise import brownian_increments
from .pointwise import PointwiseFunction, pointwise
from .result import FileFormatError, NonFiniteStateError, SimulationResult, StatesNotKeptError, load_result
from .stats import Histogram
from .steppers.particle_mesh import mesh_drift
from .walls import Walls

__doc__ = __doc__.replace("{table}", solver_table("rst"))

#: the former name of :class:`Method` (a method object carries what ``MethodInfo`` did)
MethodInfo = Method

__all__ = [
    "simulate",
    "SimulationResult",
    "load_result",
    "Histogram",
    "pointwise",
    "PointwiseFunction",
    "brownian_increments",
    "METHODS",
    "Method",
    "MethodInfo",
    "MeanField",
    "Blob",
    "mesh_drift",
    "fitting_methods",
    "solver_table",
    "NonFiniteStateError",
    "StatesNotKeptError",
    "FileFormatError",
    "BackendFallbackWarning",
    "Walls",
]
