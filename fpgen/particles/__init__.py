r"""Particle ensembles: ``simulate(equation, x0, t_span, *, dt, method, backend, seed, ...)``.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium; a
reversed equation runs in its own time :math:`s = T - t`, from 0 to T.

Solver table (strong / weak order of the error at a fixed time as :math:`h \to 0`;
"exact" = no time-step error):

==============  ========================================================  ========  ======
method          scheme                                                    strong    weak
==============  ========================================================  ========  ======
euler_maruyama  :math:`X + f h + g\,\Delta W` (Euler on an ODE)           0.5 [1]_  1
exact           :math:`X \leftarrow \Phi X + \Sigma^{1/2}\xi` (exact law)  exact     exact
heun            :math:`X + \tfrac h2[f(X, t) + f(X + hf, t + h)]` (ODEs)  2         2
jump            Poisson clocks by thinning (BGK, ReversedBGK)             exact     exact
jump_stepped    one redraw chance :math:`1 - e^{-\lambda h}` per step     --        1 [2]_
ctmc            uniformisation (MarkovChain)                              exact     exact
ctmc_gillespie  Gillespie's direct method (MarkovChain)                   exact     exact
ctmc_stepped    tau-stepping :math:`P = I + hR(X, t)` (also reversed)     --        1
==============  ========================================================  ========  ======

Every method runs on every backend (``numpy``, ``numba``, ``cuda``).

.. [1] 1 with additive noise (OU, linear, kinetic, constant g) and on ODEs.
.. [2] exact at grid times for forward BGK, whose rate does not depend on the state.

Which method fits which equation: OrnsteinUhlenbeck (any schedule), LinearFokkerPlanck and
KineticLangevin take ``exact`` (default) and ``euler_maruyama``; FokkerPlanck and reversed
diffusions with :math:`\lambda > 0` take ``euler_maruyama``; ODEs (VelocityODE, the
probability flow :math:`\lambda = 0`) take ``heun`` (default) and ``euler_maruyama``; BGK and
ReversedBGK take ``jump`` and ``jump_stepped``; MarkovChain takes ``ctmc``,
``ctmc_gillespie`` and ``ctmc_stepped``; ReversedMarkovChain takes ``ctmc_stepped``.
``docs/solvers.md`` has the full table with references.

The ``numba`` backend fuses the whole time loop into one parallel kernel per solve for the
linear equations, BGK toward Gaussian / Gaussian-mixture / categorical laws, Markov chains, and
equations whose drift, diffusion or velocity are :func:`pointwise` functions (scalar math per
particle); anything else runs on NumPy with a one-line :class:`BackendFallbackWarning`.  The ``cuda``
backend runs the same kernels on a GPU (numba-CUDA, one thread per particle, the per-particle
steps of :mod:`fpgen.kernels.particle_steps`; CuPy arrays and torch CUDA tensors in and out;
:mod:`fpgen.particles._cuda`).  The backends draw the same counter-based random numbers
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

from ._methods import METHODS, MethodInfo, fitting_methods
from ._noise import brownian_increments
from ._result import NonFiniteStateError, SimulationResult, load_result
from ._simulate import BackendFallbackWarning, simulate
from ._stats import Histogram
from .pointwise import PointwiseFunction, pointwise
from .walls import Walls

__all__ = [
    "simulate",
    "SimulationResult",
    "load_result",
    "Histogram",
    "pointwise",
    "PointwiseFunction",
    "brownian_increments",
    "METHODS",
    "MethodInfo",
    "fitting_methods",
    "NonFiniteStateError",
    "BackendFallbackWarning",
    "Walls",
]
