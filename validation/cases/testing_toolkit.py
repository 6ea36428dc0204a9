"""fpgen.testing judges schemes: correct ones pass at a measured false-alarm rate, mutants fail."""

import math

from fpgen import testing as T

from ..case import Case, Check


def _verdict(fn, *args, **kw) -> bool:
    try:
        fn(*args, **kw)
        return True
    except AssertionError:
        return False


def run(ctx):
    gbm, ou = T.geometric_brownian_motion(), T.ornstein_uhlenbeck_sde()
    strat = T.stratonovich_gbm()
    seeds = range(10 if ctx.quick else 100)
    correct = [("EM strong 1/2 (GBM)", T.assert_strong_order, T.euler_maruyama(gbm), gbm, 0.5),
               ("EM strong 1 (OU, additive)", T.assert_strong_order, T.euler_maruyama(ou), ou, 1.0),
               ("Milstein strong 1 (GBM)", T.assert_strong_order, T.milstein(gbm), gbm, 1.0),
               ("Heun strong 1 (Stratonovich GBM)", T.assert_strong_order,
                T.stochastic_heun(strat), strat, 1.0),
               ("EM weak 1 (GBM)", T.assert_weak_order, T.euler_maruyama(gbm), gbm, 1.0)]
    checks = []
    for name, fn, step, prob, order in correct:
        alarms = sum(not _verdict(fn, step, prob, order, seed=1000 + s) for s in seeds)
        checks.append(Check.below(f"false alarms, {name}", 0.0 if ctx.quick else 0.05,
                                  alarms / len(seeds),
                                  why=f"{len(seeds)} seeds; tolerance 0.15 on the slope"))

    def noise_times_dt(x, t, dt, dW):
        return x + gbm.drift(x, t) * dt + gbm.diffusion(x, t)[..., 0] * dW * math.sqrt(dt)

    def milstein_no_correction(x, t, dt, dW):
        g = gbm.diffusion(x, t)[..., 0]
        return x + gbm.drift(x, t) * dt + g * dW + 0.25 * g * dW * dW

    def em_on_stratonovich(x, t, dt, dW):
        return x + strat.drift(x, t) * dt + strat.diffusion(x, t)[..., 0] * dW

    mutants = [("noise scaled by dt instead of sqrt(dt)", T.assert_strong_order, noise_times_dt,
                gbm, 0.5),
               ("Milstein without the Ito correction", T.assert_weak_order,
                milstein_no_correction, gbm, 1.0),
               ("Ito scheme on a Stratonovich SDE", T.assert_strong_order, em_on_stratonovich,
                strat, 0.5)]
    for name, fn, step, prob, order in mutants:
        caught = sum(not _verdict(fn, step, prob, order, seed=2000 + s) for s in seeds)
        checks.append(Check.close(f"detection rate, {name}", 1.0, caught / len(seeds), atol=0.0,
                                  why=f"{len(seeds)} seeds"))
    ou2 = T.ornstein_uhlenbeck_sde(theta=1.0, sigma=math.sqrt(2.0))

    def implicit_by_mistake(x, t, dt, dW):
        return (x + math.sqrt(2.0) * dW) / (1.0 + dt)

    for h in (0.1, 0.2, 0.4):
        S = T.assert_stationary_covariance(T.euler_maruyama(ou2), 1, 1, h, 1.0 / (1.0 - h / 2))
        checks.append(Check.close(f"EM stationary variance, h = {h}", 1.0 / (1.0 - h / 2),
                                  float(S[0, 0]), rtol=1e-12, why="exact discrete Lyapunov"))
    caught = not _verdict(T.assert_stationary_covariance, implicit_by_mistake, 1, 1, 0.2, 1 / 0.9)
    checks.append(Check("drift at the new point, caught by the exact stationary bias", "caught",
                        "caught" if caught else "missed", "exact", caught))
    R = T.uniform_chain(4).chain.generator.copy()
    R[2, 1] = -R[2, 1]
    caught = not _verdict(T.assert_generator, R)
    checks.append(Check("generator with one wrong sign, caught", "caught",
                        "caught" if caught else "missed", "exact", caught))
    return checks


CASE = Case("testing-toolkit-verdicts", "fpgen.testing on the SDE catalogue",
            "pathwise exact solutions; exact discrete stationary variance", run)
