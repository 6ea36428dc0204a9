"""Public helpers for property-testing numerical schemes — fpgen's and its users'.

fpgen's exact laws make it the oracle:

* :mod:`~fpgen.testing.catalogue` — problems with exact answers (SDEs with pathwise exact
  solutions, linear and nonlinear with strong multiplicative noise, Fokker–Planck problems
  with exact densities and equilibria, diffusions inside walls with exact (sub-)densities,
  Markov chains with exact laws);
* :mod:`~fpgen.testing.schemes` — reference one-step schemes (Euler–Maruyama, Milstein,
  stochastic Heun) in the plug-in form ``step(x, t, dt, dW) -> x_next``;
* :mod:`~fpgen.testing.orders` — ``assert_strong_order`` / ``assert_weak_order`` on shared
  Brownian paths with fitted slopes and confidence intervals, on the asymptotic tail of the
  step sizes (``asymptotic_tail``: local slopes that still drift beyond their Monte-Carlo
  noise are pre-asymptotic and left out, or the assertion refuses and names finer steps);
* :mod:`~fpgen.testing.exit_times` — exact mean exit times and hitting probabilities of 1-D
  diffusions (scale and speed quadrature) and closed forms for Brownian motion and a random walk;
* :mod:`~fpgen.testing.assertions` — ``assert_transition_law``, ``assert_generator``,
  ``assert_mass_conserving``, ``assert_positive``, ``assert_equilibrium_preserved``,
  ``assert_decay_rate``, ``assert_stationary_covariance``;
* :mod:`~fpgen.testing.starts` — ``quadratic_profile_starts``: deterministic particle starts
  distributed as the m = 2 Barenblatt profile (no Monte-Carlo noise in a blob method's error);
* :mod:`~fpgen.testing.strategies` — hypothesis strategies (needs the ``test`` extra);
* :mod:`~fpgen.testing.plugin` — pytest fixtures ``fpgen_rng`` and ``fpgen_backend``.
"""

from .assertions import (
    assert_decay_rate,
    assert_equilibrium_preserved,
    assert_generator,
    assert_mass_conserving,
    assert_positive,
    assert_stationary_covariance,
    assert_transition_law,
    linear_scheme_matrices,
    measure_decay_rate,
)
from .brownian import BrownianPath
from .catalogue import (
    ChainProblem,
    DensityProblem,
    SDEProblem,
    WalledProblem,
    absorbed_brownian_motion,
    absorbed_ou,
    arctan_sde,
    birth_death,
    double_well_density,
    geometric_brownian_motion,
    immigration_death,
    kinetic_density,
    linear_additive,
    linear_density,
    linear_multiplicative,
    ornstein_uhlenbeck_sde,
    ou_density,
    periodic_brownian_motion,
    reflected_brownian_box,
    reflected_ou,
    sde_catalogue,
    sinh_sde,
    stratonovich_gbm,
    two_state_chain,
    uniform_chain,
    walled_catalogue,
)
from .exit_times import (
    brownian_exit_time,
    brownian_square_exit_time,
    diffusion_exit_time,
    diffusion_hitting_probability,
    random_walk_exit_time,
    random_walk_hitting_probability,
)
from .orders import (
    AsymptoticTail,
    FpgenScheme,
    OrderAssertionError,
    OrderFit,
    OrderReport,
    assert_strong_order,
    assert_weak_order,
    asymptotic_tail,
    fit_order,
    strong_errors,
    weak_errors,
)
from .schemes import euler_maruyama, milstein, stochastic_heun
from .starts import quadratic_profile_starts

__all__ = [
    "BrownianPath", "quadratic_profile_starts",
    "SDEProblem", "DensityProblem", "ChainProblem",
    "geometric_brownian_motion", "linear_additive", "ornstein_uhlenbeck_sde",
    "linear_multiplicative", "stratonovich_gbm", "sinh_sde", "arctan_sde", "sde_catalogue",
    "ou_density", "linear_density", "kinetic_density", "double_well_density",
    "two_state_chain", "uniform_chain", "immigration_death", "birth_death",
    "WalledProblem", "absorbed_ou", "reflected_ou", "absorbed_brownian_motion",
    "reflected_brownian_box", "periodic_brownian_motion", "walled_catalogue",
    "diffusion_exit_time", "brownian_exit_time", "random_walk_exit_time",
    "diffusion_hitting_probability", "random_walk_hitting_probability",
    "brownian_square_exit_time",
    "euler_maruyama", "milstein", "stochastic_heun",
    "FpgenScheme", "OrderFit", "OrderReport", "OrderAssertionError", "AsymptoticTail",
    "asymptotic_tail", "fit_order", "strong_errors", "weak_errors",
    "assert_strong_order", "assert_weak_order",
    "assert_transition_law", "assert_generator", "assert_mass_conserving", "assert_positive",
    "assert_equilibrium_preserved", "assert_decay_rate", "measure_decay_rate",
    "linear_scheme_matrices", "assert_stationary_covariance",
]
