import math

import numpy as np
import pytest
from hypothesis import given
from scipy.integrate import quad

from fpgen.schedules import (
    ConstantSchedule,
    CosineSchedule,
    CustomSchedule,
    LinearSchedule,
    get_schedule,
    vp_linear,
)
from fpgen.testing.strategies import schedules


def test_vp_linear_reference_values():
    # The issue's reference values (Song et al.'s VP-SDE, beta 0.1 -> 20), 6 significant digits.
    s = get_schedule("linear")
    assert s.tau(0.3) == pytest.approx(0.05 * 0.3 + 4.975 * 0.09, rel=1e-15)
    assert s.alpha(0.1) == pytest.approx(0.946722, abs=5e-7)
    assert s.sigma(0.1) == pytest.approx(0.322053, abs=5e-7)
    assert s.alpha(0.5) == pytest.approx(0.281183, abs=5e-7)
    assert s.sigma(0.5) == pytest.approx(0.959654, abs=5e-7)
    assert vp_linear() == s
    assert s.beta_min == pytest.approx(0.1) and s.beta_max == pytest.approx(20.0)


def test_cosine_matches_alpha_bar():
    s = CosineSchedule(s=0.008, T=1.0)
    t = np.linspace(0, 0.99, 23)
    f = np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    alpha_bar = f / f[0]
    np.testing.assert_allclose(s.alpha(t) ** 2, alpha_bar, rtol=1e-12)


@given(schedules())
def test_b_is_the_derivative_of_tau(sched):
    T = sched.horizon if math.isfinite(sched.horizon) else 2.0
    for t in np.linspace(0.05, 0.9, 5) * T:
        h = 1e-6 * T
        fd = (sched.tau(t + h) - sched.tau(t - h)) / (2 * h)
        assert fd == pytest.approx(sched.b(t), rel=1e-6)
        integral = quad(lambda u: sched.b(u), 0.0, t, epsrel=1e-12)[0]
        assert sched.tau(t) == pytest.approx(integral, rel=1e-9)
        assert sched.increment(0.3 * t, t) == pytest.approx(
            sched.tau(t) - sched.tau(0.3 * t), rel=1e-9, abs=1e-14)


def test_custom_schedule_integrates_numerically():
    s = CustomSchedule(lambda t: 1.0 + np.sin(t) ** 2)
    exact = 1.5 * 2.0 - np.sin(4.0) / 4.0
    assert s.tau(2.0) == pytest.approx(exact, rel=1e-10)


def test_vectorised_and_scalar_agree():
    s = LinearSchedule(0.1, 3.0, 2.0)
    t = np.array([0.0, 0.5, 2.0])
    np.testing.assert_allclose(s.tau(t), [s.tau(float(x)) for x in t])
    assert isinstance(s.tau(0.5), float)


@pytest.mark.parametrize("bad", ["quadratic", "Linear-ish", ""])
def test_unknown_name(bad):
    with pytest.raises(ValueError, match="schedule must be one of"):
        get_schedule(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="rate must be > 0"):
        ConstantSchedule(-1.0)
    with pytest.raises(ValueError, match="rate must be finite"):
        ConstantSchedule(float("nan"))
    with pytest.raises(TypeError, match="schedule must be None"):
        get_schedule([1, 2])
    with pytest.raises(ValueError, match="beyond the end"):
        LinearSchedule().tau(1.5)
    with pytest.raises(ValueError, match="t must be >= 0"):
        ConstantSchedule().tau(-0.1)
    with pytest.raises(ValueError, match="s <= t"):
        ConstantSchedule().increment(1.0, 0.5)


def test_custom_schedule_names_the_first_t_where_its_rate_is_not_positive():
    # was "the custom schedule's b(t) must be finite and > 0", with no t and no value
    s = CustomSchedule(lambda t: 1.0 - t, tau=lambda t: t - 0.5 * t * t)
    t = np.array([0.25, 2.0, 1.5, 0.5])
    with pytest.raises(ValueError, match=r"got b\(1.5\) = -0.5 \(the first offending t; 2 of 4 "):
        s.b(t)
    with pytest.raises(ValueError, match=r"got b\(3.0\) = -2.0"):
        s.b(3.0)
    nan = CustomSchedule(lambda t: np.where(t > 1.0, np.nan, 2.0))
    with pytest.raises(ValueError, match=r"got b\(1.25\) = nan"):
        nan.b(np.array([0.5, 1.25]))
    # the numerical clock reports where its integrand failed
    with pytest.raises(ValueError, match=r"got b\([0-9.]+\) = (0\.0|-)"):
        s.__class__(lambda t: 1.0 - t).tau(2.0)
    # a scalar rate for an array of times broadcasts as before
    np.testing.assert_array_equal(CustomSchedule(lambda t: 2.0).b(np.array([0.1, 0.2])), [2.0, 2.0])
    assert s.b(0.25) == 0.75


def test_cosine_schedule_has_a_usable_end_before_its_singular_one():
    # the rate tan(theta) pi / (2 T (1 + s)) diverges at T; in floating point b(T) = 2.5e16
    # and alpha(T) = 6e-17, finite, so nothing flagged a path or reversal started there
    c = CosineSchedule(s=0.008, T=1.0)
    assert c.usable_horizon == 0.9946  # Lu et al. 2022 (DPM-Solver)'s end for this schedule
    theta = (0.9946 + 0.008) / 1.008 * np.pi / 2
    assert c.b(0.9946) == pytest.approx(np.tan(theta) * np.pi / (2 * 1.008), rel=1e-12)
    assert c.b(0.9946) == pytest.approx(185.18, abs=0.01)
    assert c.alpha(0.9946) == pytest.approx(np.cos(theta) / np.cos(0.008 / 1.008 * np.pi / 2),
                                            rel=1e-12)
    assert CosineSchedule(T=2.0).usable_horizon == pytest.approx(1.9892, rel=1e-15)
    with pytest.raises(ValueError, match=r"T = 1.0 reaches the end of the cosine schedule "
                                         r"\(t = 1.0\), where its rate b\(t\) diverges.*"
                                         r"e.g. T = 0.9946 .*b = 185.2, alpha = 0.00842"):
        c.check_end(1.0)
    assert c.check_end(0.999) == 0.999  # finite b = 1000 there: the user's choice
    # schedules with a finite rate at their end keep it as their usable end
    for sched in (LinearSchedule(), ConstantSchedule(2.0), CustomSchedule(lambda t: 1.0 + t)):
        assert sched.usable_horizon == sched.horizon
        assert sched.check_end(1.0) == 1.0
