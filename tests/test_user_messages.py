"""Messages in the user's terms: the argument named as the user wrote it, what was expected,
what was seen."""

import warnings

import numpy as np
import pytest

import fpgen
from fpgen import FokkerPlanck, Grid
from fpgen.particles import StatesNotKeptError


def _quadratic(x):
    return 0.5 * np.sum(x**2, axis=-1)


def test_a_wrong_grad_potential_shape_names_grad_potential():
    with pytest.raises(ValueError) as info:
        FokkerPlanck.from_potential(_quadratic, lambda x: x[:, 0], 1.0, dim=2)
    msg = str(info.value)
    assert msg.startswith("grad_potential(x) must return the gradient of V"), msg
    assert "(n, 2)" in msg and "returned shape (3,)" in msg and "drift" not in msg
    with pytest.raises(ValueError, match=r"grad_potential\(x\) must return .* shape \(n, 1\)"):
        FokkerPlanck.from_potential(_quadratic, lambda x: x.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"potential\(x\) must return one value per point"):
        FokkerPlanck.from_potential(lambda x: x**2, lambda x: 2 * x, 1.0)
    with pytest.raises(ValueError, match=r"grad_potential\(0\) is not finite"):
        FokkerPlanck.from_potential(_quadratic, lambda x: np.full_like(x, np.nan), 1.0)


def test_a_2d_potential_with_dim_left_at_1_says_from_potential_takes_dim():
    def V(x):
        return x[:, 0] ** 2 + x[:, 1] ** 2

    def grad_V(x):
        return np.stack([2 * x[:, 0], 2 * x[:, 1]], axis=1)

    with pytest.raises(ValueError) as info:
        FokkerPlanck.from_potential(V, grad_V, 1.0)
    msg = str(info.value)
    assert "potential(x) failed for points of 1 coordinate" in msg, msg
    assert "pass dim=2 to FokkerPlanck.from_potential" in msg, msg
    # a V that works in any dimension with a 2-D gradient: the gradient's width says it
    with pytest.raises(ValueError, match="pass dim=2 to from_potential"):
        FokkerPlanck.from_potential(_quadratic, lambda x: np.zeros((x.shape[0], 2)), 1.0)
    with pytest.raises(ValueError, match="pass dim=2 to FokkerPlanck.from_potential"):
        FokkerPlanck.from_potential(_quadratic, grad_V, 1.0)
    eq = FokkerPlanck.from_potential(V, grad_V, 1.0, dim=2)  # and with dim it works
    assert eq.state_dim == 2


def test_the_cut_off_warning_gives_a_percentage():
    ou = fpgen.OrnsteinUhlenbeck(1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fpgen.solve_density(ou, fpgen.Gaussian([0.0], 1.0), Grid((20.0, 26.0), 30), (0, 0.1),
                            dt=0.05)
    msgs = sorted(str(w.message) for w in seen)
    assert msgs[0].startswith("the grid cuts off 100 % of p0's mass"), msgs
    assert msgs[1].startswith("the grid cuts off 100 % of the equilibrium's mass"), msgs
    # 1.8e-4 of the mass lies beyond 3.57 standard deviations on one side: "0.018 %"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fpgen.solve_density(ou, fpgen.Gaussian([0.0], 0.05**2), Grid((-0.1785, 6.0), 60),
                            (0, 0.1), dt=0.05)
    msgs = [str(w.message) for w in seen if "of p0's mass" in str(w.message)]
    assert len(msgs) == 1, [str(w.message) for w in seen]
    pct = float(msgs[0].split("cuts off ")[1].split(" %")[0])
    assert 0.01 < pct < 0.03, msgs[0]


def test_states_after_keep_states_false_explain_why_they_are_missing(tmp_path):
    ou = fpgen.OrnsteinUhlenbeck(1)
    res = fpgen.simulate(ou, np.zeros((100, 1)), (0, 1), dt=0.5, save_at=[0.5, 1.0],
                         keep_states=False)
    assert not res.states_kept
    for read in (lambda: res.final, lambda: res.states, lambda: res.at(1.0)):
        with pytest.raises(StatesNotKeptError, match=r"keep_states=False.*\.mean, \.cov"):
            read()
    with pytest.raises(ValueError, match="keep_states=False"):  # also a ValueError
        res.at(0.5)
    assert getattr(res, "final", None) is None  # and an AttributeError: getattr/hasattr work
    assert "states=not kept (keep_states=False)" in repr(res)
    res.save(tmp_path / "streamed")
    back = fpgen.load_result(tmp_path / "streamed")
    assert not back.states_kept and np.array_equal(back.mean, res.mean)
    with pytest.raises(StatesNotKeptError, match="keep_states=True"):
        _ = back.final
    bare = fpgen.simulate(ou, np.zeros((10, 1)), (0, 1), dt=0.5, keep_states=False, stats=None)
    with pytest.raises(StatesNotKeptError, match=r"no statistics either \(stats=None\)"):
        _ = bare.final
    kept = fpgen.simulate(ou, np.zeros((10, 1)), (0, 1), dt=0.5)
    assert kept.states_kept and kept.final.shape == (10, 1) and "states=kept" in repr(kept)


@pytest.mark.parametrize("bad", ["reflective", "neumann", "wall"])
def test_an_unknown_boundary_lists_the_names_and_aliases(bad):
    with pytest.raises(ValueError) as info:
        Grid((-1.0, 1.0), 10, boundary=bad)
    msg = str(info.value)
    assert f"unknown boundary {bad!r}" in msg
    for name in ("'no-flux'", "'reflecting'", "'noflux'", "'no_flux'", "'periodic'",
                 "'absorbing'", "'dirichlet'", "'specular'"):
        assert name in msg, msg
    with pytest.raises(ValueError, match=r"boundary\[1\]\[0\]: unknown boundary 'open'"):
        Grid([(-1.0, 1.0), (-1.0, 1.0)], 4, boundary=["periodic", ("open", "absorbing")])
    assert Grid((-1.0, 1.0), 4, boundary="Reflecting").boundary == (("no-flux", "no-flux"),)
