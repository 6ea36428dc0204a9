r"""numba-CUDA kernels of the ``rkl2`` gradient-flow stepper: one thread per cell, the density
kept on the device.

For :class:`~fpgen.GradientFlow` without interaction (W = 0),
:math:`\partial_t p = \nabla\cdot(p\nabla\xi) = A(p)\,p`, :math:`\xi = U'(p) + V`,
:math:`U(p) = T p^m/(m - 1)` (:math:`T p\log p` at m = 1), the flux-form scheme of
:mod:`fpgen.kernels.flow_steps` (modes 0 = upwind constant, 1 = MC-limited linear
reconstruction, 2 = given Scharfetter–Gummel rates) is stepped with the second-order
Runge–Kutta–Legendre super-time-stepping method (RKL2; Meyer, Balsara & Aslam, J. Comput.
Phys. 257 (2014) 594, eqs. 16–17):

.. math::
   Y_0 = p^n,\quad Y_1 = Y_0 + \tilde\mu_1\tau A(Y_0)Y_0,\\
   Y_j = \mu_j Y_{j-1} + \nu_j Y_{j-2} + (1 - \mu_j - \nu_j) Y_0
         + \tilde\mu_j \tau A(Y_{j-1})Y_{j-1} + \tilde\gamma_j \tau A(Y_0)Y_0 ,\quad
   p^{n+1} = Y_s ,

second order in :math:`\tau`.  Time convention: t = 0 is the data; time runs toward
equilibrium.

What runs where.  On the device (C-order flat arrays):

* :func:`step_kernel` — a whole step in one cooperative launch: every thread strides over the
  cells, writes :math:`Y_1`, then for each further stage the cell's
  :math:`A(Y_{j-1})Y_{j-1}` and at once the combination :math:`Y_j`, with a grid-wide barrier
  (``cuda.cg.this_grid().sync()``) between stages; at the end :math:`A(Y_s)Y_s`, the exit rates
  and the per-block reductions below.  The grid is at most what the device holds at once
  (``max_cooperative_grid_blocks``).  Numba's launch of a kernel with this many arguments costs
  tens of microseconds on the host, a stage on a 256^2 grid a few on the device: one launch
  per step instead of one per stage (~30 at dt = 0.05 there) keeps the host out of the loop;
* where a cooperative launch is not available (numba cannot link it, or ``cooperative=False``):
  :func:`first_stage_kernel` writes :math:`Y_1` and :func:`stage_kernel` each further stage
  (one thread per cell, one launch per stage, no separate combine launch);
* :func:`evaluate_kernel` — :math:`A(p)p` and the exit rates (the diagonal of :math:`-A`), at a
  step's end (the next step's first evaluation) and for the positivity bound;
* :func:`reduce_kernel` — per block: the maximum exit rate and the maximum density (NaN when
  one is NaN), whether a cell is negative or not finite, and the free-energy sum.

Every cell's value is the CPU's expression in the CPU's association order
(:func:`fpgen.kernels.flow_steps._generator`): :math:`(A p)_c = \sum_a (-G_a(c) + G_a(c - e_a))`
accumulated from 0.0 over the axes in order (a face past a wall is 0.0; the periodic wrap face
as on the CPU), each face :math:`G = f p_i - b p_j` computed by each of its two cells, the
limiter's ratios :math:`p^E` of the left cell and :math:`p^W` of the right one with the
line ends' stencils.  The per-value functions are device twins of
:mod:`fpgen.kernels.flow_steps`' ``_pos``, ``_power``, ``_slope``, ``_east``, ``_west`` and
``_xi_cell``: the simulator would run the ``@njit`` originals, but numba's real CUDA target
cannot compile them (it mistypes the builtins ``max`` / ``min`` and ``np.sqrt`` there; checked
with ``numba.cuda.compile_ptx`` for sm_90), so the twins write the same operations with
explicit selects in Python's order and ``math.fabs`` / ``math.sqrt``, and
:func:`twins_kernel` pins them to the CPU functions bit for bit on random inputs (with NaN,
infinities and signed zeros).  A general exponent's ``q**e`` is libdevice's ``pow`` on the
device (glibc's on the CPU): it may differ in the last place (exponents 1, 2 and 0.5 are
exact).

On the host (:class:`FlowRKL2Cuda`): the step logic of
:func:`fpgen.kernels.flow_rkl.flow_rkl2_run` line by line — the step from ``safety`` times the
bound, the ``max_stages`` splitting (substeps), the stage count
(:func:`~fpgen.kernels.flow_rkl.rkl2_stage_count`) and coefficients, halvings of a step with a
negative or non-finite cell, retries of a step outside its stability interval at its end, the
status codes — with the stage coefficients computed in Python (the same doubles; for the
cooperative step a table per stage count, copied to the device once) and only the reductions'
per-block results (4 numbers per block) copied back per try.  The density stays on
the device; it is copied back only at save times.

Agreement with the CPU: numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) executes this
source with IEEE arithmetic and reproduces the CPU rkl2 kernel's densities and step, stage,
halving and retry counts bit for bit (tests/test_gradient_flow_cuda.py); the free energy is
summed in another order (a tree per block), equal to ~1e-15 relative.  Compiled by NVVM,
``a * b + c`` is contracted into a fused multiply-add (NVVM's default ``-fma=1``; numba offers no
switch), which rounds once instead of twice: a density then differs from the CPU's by a few
units in the last place per stage, and the GPU test allows ``rtol = 1e-9``.  The simulator runs
cooperative grids of one block (its threads stride when the grid has more cells than 128); both
launch modes are tested there bit for bit.  The path is tested in the simulator only; it has not
been measured on hardware.

Importing this module imports ``numba.cuda`` and compiles nothing (kernels compile at their
first launch, for the device in use); :mod:`fpgen` imports it only when ``device="cuda"`` is
asked for.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .cuda_support import simulator_enabled
from .flow_rkl import rkl2_stage_coefficients, rkl2_stage_count
from .flow_steps import STATUS_DONE, STATUS_NO_SUBSTEP, STATUS_NONFINITE

__all__ = ["THREADS", "REDUCE_BLOCKS", "COOPERATIVE", "MAX_BLOCKS", "FlowRKL2Cuda", "step_kernel",
           "stage_kernel", "first_stage_kernel", "evaluate_kernel", "reduce_kernel",
           "twins_kernel", "cell_rhs"]

#: threads per block of every kernel here
THREADS = 128
#: the most blocks of the reduction (each thread first reduces a strided set of cells)
REDUCE_BLOCKS = 256
#: whether :class:`FlowRKL2Cuda` runs each step's stages in one cooperative launch by default
#: (one launch per stage otherwise: numba's launch costs tens of microseconds, the stage itself
#: a few on a 256^2 grid)
COOPERATIVE = True
#: the most blocks of a cooperative launch (None: as many as the device holds at once); the
#: tests set a few to make every thread stride over many cells
MAX_BLOCKS: int | None = None


# ---------------------------------------------------------------------------------------------
# per value: device twins of flow_steps' _pos, _power, _slope, _east, _west, _xi_cell
# ---------------------------------------------------------------------------------------------
# numba's CUDA target cannot compile those @njit functions (it mistypes the builtins max / min
# and np.sqrt: checked with numba.cuda.compile_ptx for sm_90), so they are written again here
# with explicit selects in Python's order (max(x, 0) = 0 if 0 > x else x, keeping NaN and -0),
# math.fabs / math.sqrt, and the division of _east / _west skipped where their select keeps 1
# (the same value); twins_kernel pins them to the CPU functions (tests/gpu_flow_cases.py).


@cuda.jit(device=True)
def _max0(x):
    """max(x, 0.0) as Python and numba compute it (NaN and -0.0 kept)."""
    return 0.0 if 0.0 > x else x


@cuda.jit(device=True)
def _min2(a, b):
    """min(a, b) as Python and numba compute it."""
    return b if b < a else a


@cuda.jit(device=True)
def _pos(u):
    """max(u, 0) propagating NaN (:func:`fpgen.kernels.flow_steps._pos`)."""
    return u if (u > 0.0 or u != u) else 0.0


@cuda.jit(device=True)
def _power(q, e):
    """q**e with exponents 1, 2 and 0.5 exact (:func:`fpgen.kernels.flow_steps._power`)."""
    if e == 1.0:
        return q
    if e == 2.0:
        return q * q
    if e == 0.5:
        return math.sqrt(q)
    return q**e


@cuda.jit(device=True)
def _slope(q, dr, dl):
    """(sigma, keep) of the MC limiter (:func:`fpgen.kernels.flow_steps._slope`)."""
    mag = _min2(_min2(2.0 * math.fabs(dl), 2.0 * math.fabs(dr)), 0.5 * math.fabs(dl + dr))
    sigma = (mag if dr > 0.0 else -mag) if dr * dl > 0.0 else 0.0
    keep = (sigma == 0.0 and q < math.inf) or not q > 0.0
    return sigma, keep


@cuda.jit(device=True)
def _east(q, dr, dl):
    """p^E/p (:func:`fpgen.kernels.flow_steps._east`)."""
    sigma, keep = _slope(q, dr, dl)
    if keep:
        return 1.0
    return _max0((q + 0.5 * sigma) / q)


@cuda.jit(device=True)
def _west(q, dr, dl):
    """p^W/p (:func:`fpgen.kernels.flow_steps._west`)."""
    sigma, keep = _slope(q, dr, dl)
    if keep:
        return 1.0
    return _max0((q - 0.5 * sigma) / q)


@cuda.jit(device=True)
def _xi_cell(pc, vc, cm, m):
    """xi = V + U'(max(p, 0)) of one cell (:func:`fpgen.kernels.flow_steps._xi_cell`)."""
    if m == 1.0:
        return vc + 0.0
    if m == 2.0:
        return vc + cm * _max0(pc)
    return vc + cm * _power(_max0(pc), m - 1.0) / (m - 1.0)


@cuda.jit
def twins_kernel(a, b, c, out):
    """out[:, i] = (_pos(a), _power(a, b), _east(a, b, c), _west(a, b, c), _xi_cell(a, c, b, 1.5),
    _xi_cell(a, c, b, 2.0), _xi_cell(a, c, b, 1.0), _slope(a, b, c)[0]) at i: the twins against
    the CPU functions (tests)."""
    i = cuda.grid(1)
    if i < a.size:
        out[0, i] = _pos(a[i])
        out[1, i] = _power(math.fabs(a[i]), b[i])
        out[2, i] = _east(a[i], b[i], c[i])
        out[3, i] = _west(a[i], b[i], c[i])
        out[4, i] = _xi_cell(a[i], c[i], b[i], 1.5)
        out[5, i] = _xi_cell(a[i], c[i], b[i], 2.0)
        out[6, i] = _xi_cell(a[i], c[i], b[i], 1.0)
        out[7, i] = _slope(a[i], b[i], c[i])[0]


# ---------------------------------------------------------------------------------------------
# per cell (device functions)
# ---------------------------------------------------------------------------------------------


@cuda.jit(device=True)
def _stride(shape, a):
    """The C-order stride of axis a."""
    st = 1
    for b in range(a + 1, shape.size):
        st *= shape[b]
    return st


@cuda.jit(device=True)
def _stencil(p, x, ix, n, st, per):
    """(q, dr, dl) of cell x (coordinate ix on an axis of n cells and stride st) for the limiter:
    q = max(p_x, 0) and the differences to its neighbours (the wrap neighbour on a periodic
    axis, 0 past a wall) — :func:`fpgen.kernels.flow_steps._stencil`'s expressions."""
    q = _max0(p[x])
    if ix < n - 1:
        dr = _max0(p[x + st]) - q
    elif per:
        dr = _max0(p[x - (n - 1) * st]) - q
    else:
        dr = 0.0
    if ix > 0:
        dl = q - _max0(p[x - st])
    elif per:
        dl = q - _max0(p[x + (n - 1) * st])
    else:
        dl = 0.0
    return q, dr, dl


@cuda.jit(device=True)
def _face_flux(p, V, rf, rb, a, L, iL, R, iR, n, st, per, ha, mode, cm, m):
    """(forward rate, backward rate, flux) of the face between cell L (coordinate iL) and its
    right neighbour R (iR) along axis a, as the CPU's face loops compute them."""
    if mode == 2:
        f = rf[a, L]
        b = rb[a, L]
    else:
        x_i = _xi_cell(p[L], V[L], cm, m)
        x_j = _xi_cell(p[R], V[R], cm, m)
        u = -(x_j - x_i) / ha
        if mode == 1:
            qL, drL, dlL = _stencil(p, L, iL, n, st, per)
            qR, drR, dlR = _stencil(p, R, iR, n, st, per)
            re = _east(qL, drL, dlL)
            rw = _west(qR, drR, dlR)
            f = _pos(u) * re / ha
            b = _pos(-u) * rw / ha
        else:
            f = _pos(u) / ha
            b = _pos(-u) / ha
    return f, b, f * p[L] - b * p[R]


@cuda.jit(device=True)
def cell_rhs(p, V, rf, rb, shape, periodic, hs, mode, T, m, c):
    """((A p)_c, the exit rate of cell c): over the axes in order, out += -G(right face) +
    G(left face) and exit += f(right face) + b(left face), from 0.0 (a face past a wall: 0.0)."""
    cm = T * m
    out = 0.0
    ex = 0.0
    for a in range(shape.size):
        n = shape[a]
        st = _stride(shape, a)
        i = (c // st) % n
        per = periodic[a] != 0
        ha = hs[a]
        if i < n - 1:
            fr, _, gr = _face_flux(p, V, rf, rb, a, c, i, c + st, i + 1, n, st, per, ha, mode,
                                    cm, m)
        elif per:
            fr, _, gr = _face_flux(p, V, rf, rb, a, c, i, c - (n - 1) * st, 0, n, st, per, ha,
                                    mode, cm, m)
        else:
            fr = 0.0
            gr = 0.0
        if i > 0:
            _, bl, gl = _face_flux(p, V, rf, rb, a, c - st, i - 1, c, i, n, st, per, ha, mode,
                                    cm, m)
        elif per:
            _, bl, gl = _face_flux(p, V, rf, rb, a, c + (n - 1) * st, n - 1, c, i, n, st, per,
                                    ha, mode, cm, m)
        else:
            bl = 0.0
            gl = 0.0
        ex += fr + bl
        out += -gr + gl
    return out, ex


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------


@cuda.jit
def first_stage_kernel(y1, p, a1, f0):
    """y1 = p + a1 f0 (the first RKL2 stage, a1 = mu~_1 tau)."""
    c = cuda.grid(1)
    if c < p.size:
        y1[c] = p[c] + a1 * f0[c]


@cuda.jit
def stage_kernel(yj, ym1, ym2, p, f0, mu, nu, c0, aj, gj, V, rf, rb, shape, periodic, hs, mode,
                 T, m):
    """yj = mu ym1 + nu ym2 + c0 p + aj A(ym1) ym1 + gj f0: the cell's right-hand side at ym1
    and the stage combination of :func:`fpgen.kernels.flow_rkl.flow_rkl2_run` (the same
    expression, the same association) in one launch."""
    c = cuda.grid(1)
    if c < p.size:
        fj, _ = cell_rhs(ym1, V, rf, rb, shape, periodic, hs, mode, T, m, c)
        yj[c] = mu * ym1[c] + nu * ym2[c] + c0 * p[c] + aj * fj + gj * f0[c]


@cuda.jit
def evaluate_kernel(p, V, rf, rb, shape, periodic, hs, mode, T, m, out, exits):
    """out = A(p) p and exits = the exit rates of the cells."""
    c = cuda.grid(1)
    if c < p.size:
        o, e = cell_rhs(p, V, rf, rb, shape, periodic, hs, mode, T, m, c)
        out[c] = o
        exits[c] = e


@cuda.jit(device=True)
def _max_nan(a, b):
    """max(a, b), NaN when either is NaN."""
    if a != a or b != b:
        return math.nan
    return b if b > a else a


@cuda.jit(device=True)
def _energy_cell(pc, vc, T, m):
    """U(max(p, 0)) + V p of one cell (:func:`fpgen.kernels.flow_steps.flow_free_energy`'s
    term)."""
    q = _max0(pc)
    if m == 1.0:
        u = T * q * math.log(q) if q > 0 else 0.0
    else:
        u = T * _power(q, m) / (m - 1.0)
    return u + vc * pc


@cuda.jit(device=True)
def _accumulate(mx, mp, bad, es, e, v, vc, T, m):
    """One cell (exit rate e, density v, potential vc) into a thread's (max exit rate, max
    density, bad flag, free-energy sum)."""
    if not (v >= 0.0 and v < math.inf):
        bad = 1.0
    return _max_nan(mx, e), _max_nan(mp, v), bad, es + _energy_cell(v, vc, T, m)


@cuda.jit(device=True)
def _block_reduce(mx, mp, bad, es, partial):
    """partial[:, block] = the block's (max of mx, max of mp — NaN when one is NaN —, max of
    bad, sum of es) over its threads (a tree in shared memory; every thread of the block calls
    it)."""
    sx = cuda.shared.array(THREADS, dtype=np.float64)
    sp = cuda.shared.array(THREADS, dtype=np.float64)
    sb = cuda.shared.array(THREADS, dtype=np.float64)
    se = cuda.shared.array(THREADS, dtype=np.float64)
    tid = cuda.threadIdx.x
    sx[tid] = mx
    sp[tid] = mp
    sb[tid] = bad
    se[tid] = es
    cuda.syncthreads()
    width = THREADS // 2
    while width > 0:
        if tid < width:
            sx[tid] = _max_nan(sx[tid], sx[tid + width])
            sp[tid] = _max_nan(sp[tid], sp[tid + width])
            sb[tid] = _max_nan(sb[tid], sb[tid + width])
            se[tid] = se[tid] + se[tid + width]
        cuda.syncthreads()
        width //= 2
    if tid == 0:
        b = cuda.blockIdx.x
        partial[0, b] = sx[0]
        partial[1, b] = sp[0]
        partial[2, b] = sb[0]
        partial[3, b] = se[0]


@cuda.jit
def reduce_kernel(exits, y, V, T, m, partial):
    """partial[:, block] = (max exit rate, max y — NaN when one is NaN —, 1.0 when a cell of y is
    negative or not finite else 0.0, the block's sum of U(max(y, 0)) + V y)."""
    c = cuda.grid(1)
    step = cuda.gridsize(1)
    mx = -math.inf
    mp = -math.inf
    bad = 0.0
    es = 0.0
    while c < y.size:
        mx, mp, bad, es = _accumulate(mx, mp, bad, es, exits[c], y[c], V[c], T, m)
        c += step
    _block_reduce(mx, mp, bad, es, partial)


@cuda.jit(device=True)
def _pick(k, r0, r1, r2):
    """r0, r1 or r2 for k = 0, 1, 2 (the stage buffers' rotation)."""
    if k == 0:
        return r0
    if k == 1:
        return r1
    return r2


@cuda.jit
def step_kernel(bufs, ip, r0, r1, r2, f0, fj, exits, coef, n, h, a1, V, rf, rb, shape, periodic,
                hs, mode, T, m, partial):
    """One whole n-stage RKL2 step of length h in one cooperative launch (a grid-wide barrier
    between the stages; every thread strides over the cells).

    ``bufs`` holds four densities: row ``ip`` is Y_0 = p, rows r0, r1, r2 the stages (Y_j in row
    (j - 1) mod 3 of (r0, r1, r2), the rotation of :meth:`FlowRKL2Cuda._stages`); ``coef[j]`` =
    (mu_j, nu_j, mu~_j, gamma~_j) of :func:`~fpgen.kernels.flow_rkl.rkl2_stage_coefficients`,
    ``a1`` = mu~_1 h.  Each stage is :func:`stage_kernel`'s expression; after the last one,
    fj = A(Y_s) Y_s and the exit rates, and ``partial[:, block]`` as :func:`reduce_kernel`
    writes it for Y_s.
    """
    grid = cuda.cg.this_grid()
    first = cuda.grid(1)
    step = cuda.gridsize(1)
    size = f0.size
    p = bufs[ip]
    y1 = bufs[r0]
    c = first
    while c < size:
        y1[c] = p[c] + a1 * f0[c]
        c += step
    for j in range(2, n + 1):
        grid.sync()
        yj = bufs[_pick((j - 1) % 3, r0, r1, r2)]
        ym1 = bufs[_pick((j - 2) % 3, r0, r1, r2)]
        ym2 = bufs[ip if j == 2 else _pick((j - 3) % 3, r0, r1, r2)]
        mu = coef[j, 0]
        nu = coef[j, 1]
        c0 = 1.0 - mu - nu
        aj = coef[j, 2] * h
        gj = coef[j, 3] * h
        c = first
        while c < size:
            fc, _ = cell_rhs(ym1, V, rf, rb, shape, periodic, hs, mode, T, m, c)
            yj[c] = mu * ym1[c] + nu * ym2[c] + c0 * p[c] + aj * fc + gj * f0[c]
            c += step
    grid.sync()
    ys = bufs[_pick((n - 1) % 3, r0, r1, r2)]
    mx = -math.inf
    mp = -math.inf
    bad = 0.0
    es = 0.0
    c = first
    while c < size:
        o, e = cell_rhs(ys, V, rf, rb, shape, periodic, hs, mode, T, m, c)
        fj[c] = o
        exits[c] = e
        mx, mp, bad, es = _accumulate(mx, mp, bad, es, e, ys[c], V[c], T, m)
        c += step
    _block_reduce(mx, mp, bad, es, partial)


# ---------------------------------------------------------------------------------------------
# host loop
# ---------------------------------------------------------------------------------------------


def _blocks(n: int) -> int:
    return max(1, (int(n) + THREADS - 1) // THREADS)


def _host_max_nan(x: np.ndarray) -> float:
    """max of the blocks' maxima, NaN when one is NaN (as the CPU's ``_max_nan``)."""
    return math.nan if bool(np.any(np.isnan(x))) else float(np.max(x))


class FlowRKL2Cuda:
    """The rkl2 time loop of :func:`fpgen.kernels.flow_rkl.flow_rkl2_run` with the density and
    every stage on the device.

    ``fused`` is the stepper's ``(V, rates_f, rates_b, shape, periodic, hs, mode, parabolic)``
    (flat arrays, as the CPU kernel takes them); ``c1 = 2 T m`` and ``sumh2 = sum_a 1/h_a^2``
    the bound's parabolic term, ``volume`` the cell volume of the free energy.  :meth:`load`
    puts a density on the device (and evaluates its right-hand side and bound), :meth:`run`
    advances it, :meth:`density` copies it back.

    ``cooperative`` (default :data:`COOPERATIVE`): a step's stages run in one cooperative launch
    of :func:`step_kernel` (``launch = "cooperative"``) where the device and numba can launch it;
    otherwise, or with ``cooperative=False``, one launch per stage (``launch = "per stage"``,
    :func:`stage_kernel`); ``launch_note`` says why a cooperative launch was not used.  Both
    give the same densities.  ``max_blocks`` (default :data:`MAX_BLOCKS`) caps the cooperative
    grid.
    """

    def __init__(self, fused: tuple, T: float, m: float, c1: float, sumh2: float,
                 volume: float, cooperative: bool | None = None, max_blocks: int | None = None):
        V, rf, rb, shape, periodic, hs, mode, parabolic = fused
        self.N = int(np.prod(shape))
        self.T, self.m, self.c1, self.sumh2 = float(T), float(m), float(c1), float(sumh2)
        self.volume = float(volume)
        self.mode, self.parabolic = int(mode), bool(parabolic)
        to = cuda.to_device
        self._grid = (to(np.ascontiguousarray(V, dtype=np.float64)),
                      to(np.ascontiguousarray(rf, dtype=np.float64)),
                      to(np.ascontiguousarray(rb, dtype=np.float64)),
                      to(np.ascontiguousarray(shape, dtype=np.int64)),
                      to(np.asarray(periodic, dtype=np.int64)),
                      to(np.ascontiguousarray(hs, dtype=np.float64)))
        new = cuda.device_array
        # the density (row self._ip) and the three stage buffers (rows self._rows), rotated by
        # row index: an accepted step's last stage becomes the density without a copy
        self._bufs = new((4, self.N))
        self._ip = 0
        self._rows = [1, 2, 3]
        self.f0 = new(self.N)
        self._fj = new(self.N)
        self._ex = new(self.N)
        self._nred = min(REDUCE_BLOCKS, _blocks(self.N))
        self._partial = new((4, self._nred))
        self._coef: dict[int, object] = {}
        self._launchers: dict[tuple, object] = {}
        self.bound = math.nan
        self.finite = False
        self.launch, self.launch_note = "per stage", "cooperative=False"
        max_blocks = MAX_BLOCKS if max_blocks is None else max_blocks
        self.max_blocks = None if max_blocks is None else int(max_blocks)
        self._step = None
        if COOPERATIVE if cooperative is None else cooperative:
            self._prepare_cooperative()

    @property
    def p(self):
        """The density on the device (a row of the buffers)."""
        return self._bufs[self._ip]

    def _prepare_cooperative(self) -> None:
        """Compile :func:`step_kernel` for these arrays and size its cooperative grid (at most
        the blocks the device holds at once; one in numba's simulator, which runs cooperative
        grids of one block); on failure keep the per-stage launches and say why."""
        coef = cuda.to_device(np.zeros((3, 4)))
        args = self._step_args(2, 0.0, 0.0, coef, cuda.device_array((4, 1)))
        try:
            spec = step_kernel.specialize(*args)
            if simulator_enabled():
                most = 1
            else:
                most = next(iter(spec.overloads.values())).max_cooperative_grid_blocks(THREADS)
        except Exception as exc:  # noqa: BLE001 - e.g. cudadevrt not found at link time
            self.launch_note = f"cooperative launch unavailable: {type(exc).__name__}: {exc}"
            return
        if most < 1:
            self.launch_note = "cooperative launch unavailable: no block of step_kernel fits"
            return
        blocks = min(_blocks(self.N), int(most), self.max_blocks or int(most))
        self._step = spec[blocks, THREADS]
        self._step_partial = cuda.device_array((4, blocks))
        self.launch = "cooperative"
        self.launch_note = f"{blocks} block{'s' if blocks > 1 else ''} of {THREADS} threads"

    def _step_args(self, n: int, h: float, a1: float, coef, partial) -> tuple:
        r0, r1, r2 = self._rows
        return (self._bufs, self._ip, r0, r1, r2, self.f0, self._fj, self._ex, coef, int(n),
                float(h), float(a1), *self._physics(), partial)

    def _coefficients(self, n: int):
        """(mu_j, nu_j, mu~_j, gamma~_j) for j = 2..n in rows j of a device array (cached)."""
        table = self._coef.get(n)
        if table is None:
            host = np.zeros((n + 1, 4))
            for j in range(2, n + 1):
                host[j] = rkl2_stage_coefficients(j, n)
            table = self._coef[n] = cuda.to_device(host)
        return table

    # the kernels ------------------------------------------------------------------------------
    def _launch(self, kernel, blocks: int, *args) -> None:
        """kernel[blocks, THREADS](*args) through a dispatcher specialised at its first launch
        here (the arguments' types never change): a launch then skips numba's typing of every
        argument."""
        launcher = self._launchers.get((kernel, blocks))
        if launcher is None:
            launcher = kernel.specialize(*args)[blocks, THREADS]
            self._launchers[kernel, blocks] = launcher
        launcher(*args)

    def _physics(self) -> tuple:
        V, rf, rb, shape, periodic, hs = self._grid
        return V, rf, rb, shape, periodic, hs, self.mode, self.T, self.m

    def _summary(self, part: np.ndarray) -> tuple[float, bool, float]:
        """(the bound, whether every cell is non-negative and finite, the free energy) from the
        blocks' (max exit rate, max density, bad flag, energy sum)."""
        lam = _host_max_nan(part[0])
        if self.parabolic:  # NumPy's power: C's pow, NaN (not complex) for a negative base
            with np.errstate(invalid="ignore"):
                lam += self.c1 * float(np.power(_host_max_nan(part[1]), self.m - 1.0)) * self.sumh2
        bound = 1.0 / lam if lam > 0 else math.inf
        return bound, not bool(np.any(part[2] > 0.0)), float(np.sum(part[3])) * self.volume

    def _evaluate(self, y, out) -> tuple[float, bool, float]:
        """out = A(y) y (exit rates into scratch); returns (the bound at y, whether every cell
        of y is non-negative and finite, the free energy of y)."""
        self._launch(evaluate_kernel, _blocks(self.N), y, *self._physics(), out, self._ex)
        self._launch(reduce_kernel, self._nred, self._ex, y, self._grid[0], self.T, self.m,
                     self._partial)
        return self._summary(self._partial.copy_to_host())

    def _try_step(self, h: float, n: int) -> tuple[int, float, bool, float]:
        """The n-stage step of length h from the density: (the row of Y_s, then Y_s's bound,
        whether it is non-negative and finite, its free energy); A(Y_s) Y_s in self._fj."""
        a1 = 1.0 / 3.0 * (4.0 / (n * n + n - 2.0)) * h
        if self._step is not None:
            self._step(*self._step_args(n, h, a1, self._coefficients(n), self._step_partial))
            return (self._rows[(n - 1) % 3], *self._summary(self._step_partial.copy_to_host()))
        row = self._stages(h, n, a1)
        return (row, *self._evaluate(self._bufs[row], self._fj))

    def _stages(self, h: float, n: int, a1: float) -> int:
        """Y_s of the n-stage RKL2 step of length h from the density (A(p) p in self.f0), one
        launch per stage; returns the row of Y_s (row (s - 1) mod 3 of self._rows, as in
        :func:`step_kernel`)."""
        rows = self._rows
        p = self.p
        blocks = _blocks(self.N)
        self._launch(first_stage_kernel, blocks, self._bufs[rows[0]], p, a1, self.f0)
        for j in range(2, n + 1):
            mu, nu, mut, gt = rkl2_stage_coefficients(j, n)
            ym2 = p if j == 2 else self._bufs[rows[(j - 3) % 3]]
            self._launch(stage_kernel, blocks, self._bufs[rows[(j - 1) % 3]],
                         self._bufs[rows[(j - 2) % 3]], ym2, p, self.f0, mu, nu,
                         1.0 - mu - nu, mut * h, gt * h, *self._physics())
        return rows[(n - 1) % 3]

    # the loop ---------------------------------------------------------------------------------
    def load(self, p: np.ndarray) -> int:
        """Put the density p on the device and evaluate A(p) p and the bound there; returns the
        evaluations done (1)."""
        self.p.copy_to_device(np.ascontiguousarray(p, dtype=np.float64).ravel())
        self.bound, _, _ = self._evaluate(self.p, self.f0)
        self.finite = bool(np.all(np.isfinite(p)))
        return 1

    def density(self) -> np.ndarray:
        """The density on the device, copied to the host (flat)."""
        return self.p.copy_to_host()

    def run(self, times: np.ndarray, k: int, t: float, kend: int, safety: float,
            max_stages: int, max_tries: int) -> tuple:
        """Advance over times[k] .. times[kend] from time t in [times[k], times[k + 1]).

        Returns (status, k, t, records, substeps, retries, halvings, stages, last_h,
        last_bound) with :func:`fpgen.kernels.flow_rkl.flow_rkl2_run`'s status codes
        (never STATUS_FULL: ``records``, the (t, F) after every step, is a list)."""
        records = []
        substeps = retries = halvings = stages = 0
        h = 0.0
        b1 = math.nan
        top = max_stages
        while k < kend:
            t1 = float(times[k + 1])
            while t < t1:
                cb = safety * self.bound
                h = min(t1 - t, cb * (top * top + top - 2.0) / 4.0)
                ok = False
                energy = math.nan
                row = self._ip
                for _ in range(max_tries):
                    n = int(rkl2_stage_count(h, cb))
                    row, b1, good, energy = self._try_step(h, n)
                    stages += n
                    if not good:
                        halvings += 1
                        h = 0.5 * h
                        continue
                    if h <= b1 * (n * n + n - 2.0) / 4.0 * (1.0 + 1e-12):
                        ok = True
                        break
                    retries += 1
                    cb = min(cb, safety * b1)
                if not ok:
                    return (STATUS_NO_SUBSTEP, k, t, records, substeps, retries, halvings, stages,
                            h, b1)
                last = h >= t1 - t
                if not last:
                    substeps += 1
                # accept: Y_s becomes p, its right-hand side f0 (rows and buffers swapped)
                self._rows[self._rows.index(row)] = self._ip
                self._ip = row
                self.f0, self._fj = self._fj, self.f0
                self.bound = b1
                self.finite = True
                t = t1 if last else t + h
                records.append((t, energy))
            k += 1
            t = float(times[k])
            if not self.finite:
                return (STATUS_NONFINITE, k, t, records, substeps, retries, halvings, stages, h,
                        b1)
        return STATUS_DONE, k, t, records, substeps, retries, halvings, stages, h, b1
