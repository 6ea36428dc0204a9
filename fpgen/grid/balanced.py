r"""The well-balanced kinetic scheme: Langevin transport whose discrete equilibrium is exact.

For the kinetic Langevin equation
:math:`\partial_t p = -\tfrac vm\cdot\nabla_x p + x\cdot\nabla_v p + \gamma\nabla_v\cdot(\tfrac vm p
+ \nabla_v p)` (``transport="well_balanced"``, the default for
:class:`~fpgen.equations.KineticLangevin` on a no-flux (or specular) grid;
``"well_balanced_upwind"`` is its linear form) write :math:`p = p_\infty h` with
:math:`p_\infty = g(x)\mu(v)`, :math:`g = e^{-x^2/2}`, :math:`\mu = e^{-v^2/(2m)}`. The x-flux is

.. math:: J_x = \tilde v_j\, g_{i+1/2}\,\mu_j\, \hat h, \qquad
          \tilde v_j = -\frac{\mu_{j+1/2} - \mu_{j-1/2}}{\Delta v\,\mu_j}

(:math:`\hat h` the upwind value of h, or its limited reconstruction, :mod:`fpgen.grid.limited`)
and the v-flux the exponentially fitted flux of :math:`J_v = \mu\,(F h - \gamma\,\partial_v h)`,

.. math:: J_v = \frac{\gamma}{\Delta v}\,\mu_{j+1/2}\,[B(-P)\,h_j - B(P)\,h_{j+1}],\qquad
          P = \frac{F_i\,\Delta v}{\gamma},\qquad
          F_i = \frac{g_{i+1/2} - g_{i-1/2}}{\Delta x\, g_i}

with the Bernoulli function :math:`B(z) = z/(e^z - 1)`. All rates are non-negative (a Markov
generator), and at :math:`h \equiv 1` the two divergences cancel cell by cell,
:math:`\tilde v_j\mu_j(g_{i+1/2} - g_{i-1/2})/\Delta x + F_i g_i(\mu_{j+1/2} -
\mu_{j-1/2})/\Delta v = 0`, so the sampled :math:`p_\infty` is the discrete equilibrium to
round-off. :math:`\tilde v = v/m + O(\Delta v^2)` and :math:`F = -x + O(\Delta x^2)` inside
the grid. No-flux walls are closed by zero face weights (a discrete hard wall, where the density
is :math:`p_\infty`-small); at a specular wall the wall face takes the wall cell's weight
(:math:`g_{-1/2} = g_0`), which keeps the cancellation there too.

Order: second in space with the limited x-flux (measured L1 orders 1.8–2.7 with specular
walls), first with the upwind one.

References: D. L. Scharfetter & H. K. Gummel, IEEE Trans. Electron Devices 16 (1969) 64–77
(the fitted v-flux); B. van Leer, J. Comput. Phys. 32 (1979) 101–136 (the limited x-flux).
"""

from __future__ import annotations

import numpy as np

from ..equations import KineticLangevin
from .fluxes import bernoulli
from .pattern import GridStencil

__all__ = ["WellBalancedKinetic"]


class WellBalancedKinetic:
    """The rates of the well-balanced kinetic scheme on ``stencil`` (module docstring).

    ``weights`` are the equilibrium weights :math:`p_\\infty` at the centres (relative to their
    maximum; the limiter reconstructs :math:`h = p/p_\\infty`); :meth:`rates` gives every rate
    (schedule factor excluded).
    """

    def __init__(self, equation: KineticLangevin, stencil: GridStencil):
        self.equation = equation
        self.stencil = stencil
        self.grid = stencil.grid
        self._setup()

    def _setup(self) -> None:
        r"""Per axis pair (position k, velocity dim + k) of the kinetic equation with
        :math:`H = \sum_k x_k^2/2 + v_k^2/(2m)`: the factors :math:`g = e^{-x^2/2}`,
        :math:`\mu = e^{-v^2/(2m)}` at centres and faces (zero on no-flux walls), the discrete
        velocity :math:`\tilde v_j = -(\mu_{j+1/2} - \mu_{j-1/2})/(\Delta v\,\mu_j)` and force
        :math:`F_i = (g_{i+1/2} - g_{i-1/2})/(\Delta x\, g_i)`, and the equilibrium weights
        :math:`p_\infty` at the centres (relative to their maximum)."""
        eq, g = self.equation, self.grid
        dim = eq.dim
        self.factors = {}
        logw = np.zeros(g.shape)
        for k in range(2 * dim):
            c, f = g.centres(k), g.faces(k)
            scale = 0.5 if k < dim else 0.5 / eq.mass
            Hc, Hf = scale * c * c, scale * f * f
            # face over centre ratios e^{H_c - H_f} (walls: 0, the no-flux faces; 1 at a
            # specular wall, whose outflow is the wall cell's and whose inflow its mirror's)
            up = np.exp(Hc - Hf[1:])
            up[-1] = 1.0 if g.boundary[k][1] == "specular" else 0.0
            down = np.exp(Hc - Hf[:-1])
            down[0] = 1.0 if g.boundary[k][0] == "specular" else 0.0
            # F_i on a position axis; -v~_j on a velocity axis (the same difference quotient)
            self.factors[k] = dict(slope=(up - down) / g.spacing[k],
                                   ratio_right=np.exp(Hc[:-1] - Hf[1:-1]),  # g_{i+1/2} / g_i
                                   ratio_left=np.exp(Hc[1:] - Hf[1:-1]))  # g_{i+1/2} / g_{i+1}
            shape = [1] * g.ndim
            shape[k] = -1
            logw = logw - Hc.reshape(shape)
        w = np.exp(logw - logw.max())
        if not np.all(w > 0.0):
            raise ValueError("the kinetic equilibrium underflows on part of this grid (|x| or |v| "
                             "beyond ~37 standard deviations): use smaller bounds with "
                             "transport='well_balanced'")
        self.weights = w

    def rates(self, t: float | None = None) -> np.ndarray:
        """All rates in pattern order (schedule factor excluded; they do not depend on t)."""
        eq, g = self.equation, self.grid
        dim = eq.dim
        out = np.empty(self.stencil.n_rates)
        blocks = self.stencil.block
        specular = self.stencil.specular
        ndim = g.ndim

        def along(values, axis):
            shape = [1] * ndim
            shape[axis] = -1
            return np.reshape(values, shape)

        for a in range(ndim):
            O, n, K = self.stencil.ond[a]
            h = g.spacing[a]
            rr = along(self.factors[a]["ratio_right"], a)
            rl = along(self.factors[a]["ratio_left"], a)
            full = [n - 1 if ax == a else m for ax, m in enumerate(g.shape)]
            if a < dim:  # x-transport with the discrete velocity of axis dim + a
                vt = -along(self.factors[dim + a]["slope"], dim + a)
                fwd = np.broadcast_to(np.maximum(vt, 0.0) * rr / h, full)
                bwd = np.broadcast_to(np.maximum(-vt, 0.0) * rl / h, full)
                wall = np.broadcast_to(vt, g.shape).reshape(O, n, K)
                for side, rate in ((0, -wall[:, 0, :]), (1, wall[:, n - 1, :])):
                    if (a, side) in specular:  # |v~_j| g_wall mu_j h_wall, g_wall = g_0
                        sl, moves = specular[(a, side)]
                        out[sl] = (np.maximum(rate, 0.0) / h).ravel()[moves]
            else:  # v: fitted force + friction + diffusion, gamma = D_vv
                P = along(self.factors[a - dim]["slope"], a - dim) * h / float(eq.D[a, a])
                scale = float(eq.D[a, a]) / (h * h)
                fwd = np.broadcast_to(scale * bernoulli(-P) * rr, full)
                bwd = np.broadcast_to(scale * bernoulli(P) * rl, full)
            s, e, _ = blocks[("fwd", a)]
            out[s:e] = np.ascontiguousarray(fwd).reshape(O, n - 1, K).ravel()
            s, e, _ = blocks[("bwd", a)]
            out[s:e] = np.ascontiguousarray(bwd).reshape(O, n - 1, K).ravel()
        return out
