"""Pictures of results: DensitySolution.plot / .animate, SimulationResult.plot / .animate and
fpgen.plot_density_and_ensemble write files and draw non-empty figures; bad requests are refused
with clear messages."""

import copy
import re
import subprocess
import sys
import warnings

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import animation  # noqa: E402
from PIL import Image  # noqa: E402

import fpgen  # noqa: E402
from fpgen.particles import StatesNotKeptError  # noqa: E402

TIMES = np.linspace(0.0, 1.0, 5)
P0 = fpgen.Gaussian([1.5], 0.1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ou_1d():
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-4.0, 4.0), 80)
    sol = fpgen.solve_density(ou, P0, grid, (0, 1), dt=0.025, save_at=TIMES)
    res = fpgen.simulate(ou, P0, (0, 1), dt=0.025, n_particles=4000, save_at=TIMES, seed=3,
                         method="exact", backend="numpy")
    return sol, res


@pytest.fixture(scope="module")
def kinetic():
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    grid = fpgen.PhaseSpaceGrid((-5, 5), (-5, 5), 24, 24)
    p0 = fpgen.Gaussian([1.0, 0.0], np.diag([0.2, 0.2]))
    times = [0.0, 0.5, 1.0]
    sol = fpgen.solve_density(eq, p0, grid, (0, 1), dt=0.05, save_at=times)
    res = fpgen.simulate(eq, p0, (0, 1), dt=0.05, n_particles=3000, save_at=times, seed=4,
                         method="exact", backend="numpy")
    return sol, res


@pytest.fixture(scope="module")
def chain():
    mc = fpgen.MarkovChain.uniform(5, 1.0)
    p = np.zeros(5)
    p[0] = 1.0
    times = [0.0, 0.5, 1.0]
    sol = fpgen.solve_density(mc, p, None, (0, 1), save_at=times)
    res = fpgen.simulate(mc, np.zeros((1000, 1), dtype=np.int64), (0, 1), save_at=times, seed=5)
    return sol, res


def _drawn(fig) -> int:
    """Artists that carry data on the figure's axes (lines, images, patches, collections)."""
    return sum(len(a.lines) + len(a.images) + len(a.patches) + len(a.collections)
               for a in fig.axes)


def _gif_frames(path) -> int:
    with Image.open(path) as im:
        return im.n_frames


def test_import_fpgen_does_not_import_matplotlib():
    code = "import fpgen, sys; print('matplotlib' in sys.modules, 'tqdm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_density_1d_plot_draws_one_curve_per_time(ou_1d):
    sol, _ = ou_1d
    fig = sol.plot()
    (ax,) = fig.axes
    assert len(ax.lines) == len(TIMES)
    np.testing.assert_array_equal(ax.lines[-1].get_ydata(), sol.final)
    fig = sol.plot(t=[0.0, 1.0], title="(quick size)")
    assert len(fig.axes[0].lines) == 2 and fig._suptitle.get_text() == "(quick size)"


def test_density_plot_into_given_axes_and_refusals(ou_1d, kinetic):
    sol, _ = ou_1d
    fig, ax = plt.subplots()
    assert sol.plot(t=0.5, ax=ax) is fig and len(ax.lines) == 1
    with pytest.raises(ValueError, match=r"t = 0.3 is not a save time .*save times are \[0.0"):
        sol.plot(t=0.3)
    ksol, _ = kinetic
    with pytest.raises(ValueError, match="this picture has 3 panels; pass ax only with one time"):
        ksol.plot(ax=ax)
    with pytest.raises(ValueError, match=r"axes must be distinct axes in 0..1; got \(0, 0\)"):
        ksol.plot(axes=(0, 0))


def test_phase_space_density_plots_images_and_marginals(kinetic):
    sol, _ = kinetic
    fig = sol.plot()
    images = [a for a in fig.axes if a.images]
    assert len(images) == 3 and images[0].get_xlabel() == "x" and images[0].get_ylabel() == "v"
    np.testing.assert_array_equal(images[-1].images[0].get_array(), sol.final.T)
    fig = sol.plot(axes=1)  # the velocity marginal as curves
    assert len(fig.axes[0].lines) == 3 and fig.axes[0].get_xlabel() == "v"


def test_density_animation_gif_has_one_frame_per_save_time(ou_1d, kinetic, chain, tmp_path):
    for name, (sol, _) in {"ou": ou_1d, "kinetic": kinetic, "chain": chain}.items():
        path = sol.animate(tmp_path / f"{name}.gif", fps=5)
        assert path == str(tmp_path / f"{name}.gif")
        assert (tmp_path / f"{name}.gif").stat().st_size > 1000
        assert _gif_frames(path) == len(sol.times)


def test_ensemble_plots_histograms_scatter_and_bars(ou_1d, kinetic, chain):
    _, res = ou_1d
    fig = res.plot()
    assert len(fig.axes[0].patches) == len(TIMES)  # one histogram (StepPatch) per save time
    # the histogram is a sub-probability density: it integrates to 1 without walls
    step = fig.axes[0].patches[-1]
    values, edges = step.get_data()[:2]
    assert np.sum(values * np.diff(edges)) == pytest.approx(1.0, abs=1e-12)
    _, kres = kinetic
    fig = kres.plot()
    assert len(fig.axes) == 3 and all(len(a.collections) == 1 for a in fig.axes)
    assert fig.axes[0].get_xlabel() == "x" and fig.axes[0].get_ylabel() == "v"
    assert len(kres.plot(coord=1).axes[0].patches) == 3
    _, cres = chain
    fig = cres.plot()
    assert len(fig.axes[0].patches) == 3 * 5  # 3 times x 5 states
    heights = [p.get_height() for p in fig.axes[0].patches[-5:]]
    assert sum(heights) == pytest.approx(1.0)


def test_ensemble_animation_gif(ou_1d, kinetic, chain, tmp_path):
    for name, (_, res) in {"ou": ou_1d, "kinetic": kinetic, "chain": chain}.items():
        path = res.animate(tmp_path / f"{name}.gif")
        assert _gif_frames(path) == len(res.times)
        assert (tmp_path / f"{name}.gif").stat().st_size > 1000


def test_streamed_results_plot_their_histograms_or_refuse():
    ou = fpgen.OrnsteinUhlenbeck(1)
    res = fpgen.simulate(ou, P0, (0, 1), dt=0.05, n_particles=2000, save_at=TIMES, seed=1,
                         keep_states=False, stats=["moments", fpgen.Histogram(30, (-4, 4))],
                         backend="numpy")
    fig = res.plot()
    assert len(fig.axes[0].patches) == len(TIMES)
    assert "streamed histogram" in fig.axes[0].get_ylabel()
    bare = fpgen.simulate(ou, P0, (0, 1), dt=0.05, n_particles=100, seed=1, keep_states=False,
                          backend="numpy")
    with pytest.raises(StatesNotKeptError, match=r"plot\(\): this run did not keep the particle "
                                                 r"states .*keep_states=True"):
        bare.plot()
    with pytest.raises(StatesNotKeptError, match="animate"):
        bare.animate("never-written.gif")


def test_density_and_ensemble_side_by_side(ou_1d, kinetic, chain):
    sol, res = ou_1d
    fig = fpgen.plot_density_and_ensemble(sol, res, times=[0.0, 1.0], title="(quick size)")
    assert len(fig.axes) == 2
    for a in fig.axes:
        assert len(a.lines) == 1 and len(a.patches) == 1
    # the title's L1 distance is that of the histogram on the grid's cells to the density
    l1 = float(fig.axes[1].get_title().split("L1 = ")[1])
    edges = sol.grid.faces(0)
    h = np.histogram(res.final[:, 0], bins=edges)[0] / (res.n_particles * np.diff(edges))
    assert l1 == pytest.approx(np.sum(np.abs(h - sol.final) * np.diff(edges)), rel=1e-2)
    ksol, kres = kinetic
    fig = fpgen.plot_density_and_ensemble(ksol, kres)
    meshes = [a.collections[0] for a in fig.axes[:6]]  # then the colour bar
    assert len(meshes) == 2 * 3  # grid row and particle row
    np.testing.assert_allclose(meshes[2].get_array().reshape(24, 24), ksol.final.T)
    fig = fpgen.plot_density_and_ensemble(ksol, kres, max_bins=10)  # 24 cells: blocks of 3
    grid_final = fig.axes[2].collections[0].get_array().reshape(8, 8)
    blocks = ksol.final.reshape(8, 3, 8, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(grid_final, blocks.T, rtol=1e-12)
    fig = fpgen.plot_density_and_ensemble(ksol, kres, coord=1)
    assert len([a for a in fig.axes if a.lines]) == 3
    csol, cres = chain
    fig = fpgen.plot_density_and_ensemble(csol, cres)
    assert all(len(a.patches) == 2 * 5 for a in fig.axes)


def test_density_and_ensemble_refusals(ou_1d, kinetic):
    sol, res = ou_1d
    ksol, kres = kinetic
    with pytest.raises(ValueError, match="grid has 2 axes but the particles have 1 coordinates"):
        fpgen.plot_density_and_ensemble(ksol, res)
    with pytest.raises(ValueError, match=r"t = 0.3 is not a save time of both"):
        fpgen.plot_density_and_ensemble(sol, res, times=[0.3])
    late = fpgen.simulate(fpgen.OrnsteinUhlenbeck(1), P0, (0, 1), dt=0.1, n_particles=50,
                          save_at=[0.9], seed=0, backend="numpy")
    with pytest.raises(ValueError, match="share no save time"):
        fpgen.plot_density_and_ensemble(sol, late)
    with pytest.raises(ValueError, match="max_bins must be a positive integer or None; got 0"):
        fpgen.plot_density_and_ensemble(sol, res, max_bins=0)


def test_animation_formats_and_missing_ffmpeg(ou_1d, tmp_path, monkeypatch):
    sol, res = ou_1d
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(RuntimeError, match="an MP4 needs ffmpeg, which was not found"):
        sol.animate(tmp_path / "movie.mp4")
    with pytest.raises(RuntimeError, match="ffmpeg"):
        res.animate(tmp_path / "movie.mp4")
    assert not (tmp_path / "movie.mp4").exists()
    with pytest.raises(ValueError, match=r"path must end in .gif or .mp4"):
        sol.animate(tmp_path / "movie.avi")
    with pytest.raises(ValueError, match="fps must be a positive number"):
        sol.animate(tmp_path / "movie.gif", fps=0)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        res.plot(bins=0)
    with pytest.raises(ValueError, match=r"coord must be a state coordinate in 0..0"):
        res.plot(coord=2)


@pytest.mark.skipif(not animation.writers.is_available("ffmpeg"),
                    reason="ffmpeg is not installed")
def test_mp4_where_ffmpeg_exists(ou_1d, tmp_path):
    sol, _ = ou_1d
    path = sol.animate(tmp_path / "movie.mp4")
    assert (tmp_path / "movie.mp4").stat().st_size > 1000 and path.endswith(".mp4")


def _with_nan(obj, name, where):
    """A shallow copy of a solution or result whose array ``name`` holds a NaN at ``where``."""
    out = copy.copy(obj)
    values = np.array(getattr(obj, name), dtype=float)
    values[where] = np.nan
    setattr(out, name, values)
    return out


def test_nan_densities_are_drawn_on_a_finite_scale_with_a_warning(ou_1d, kinetic, tmp_path):
    # A NaN cell used to make the colour scale NaN (blank images, no word said) and the 1-D
    # animation fail in matplotlib ("Axis limits cannot be NaN or Inf").
    ksol = _with_nan(kinetic[0], "densities", (1, 3, 3))
    with pytest.warns(RuntimeWarning, match=r"non-finite values \(NaN or inf\): 1 at t = 0.5;"):
        fig = ksol.plot()
    vmax = fig.axes[0].images[0].get_clim()[1]
    assert vmax == pytest.approx(float(np.nanmax(ksol.densities)))
    with pytest.warns(RuntimeWarning, match="1 at t = 0.5"):
        ksol.animate(tmp_path / "k.gif")
    sol = _with_nan(ou_1d[0], "densities", (2, 5))
    with pytest.warns(RuntimeWarning, match="1 at t = 0.5"):
        sol.plot(t=0.5)
    with pytest.warns(RuntimeWarning, match="1 at t = 0.5"):
        path = sol.animate(tmp_path / "ou.gif")
    assert _gif_frames(path) == len(TIMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol.plot(t=[0.0, 1.0])  # the times drawn are finite: no warning


def test_nan_particles_are_left_out_with_a_warning(ou_1d, kinetic, tmp_path):
    # A NaN particle used to fail inside matplotlib ('Nan values in "edges"', 'Axis limits').
    res = _with_nan(ou_1d[1], "states", (4, 3, 0))
    with pytest.warns(RuntimeWarning, match=r"particles with non-finite states .*: 1 at t = 1;"):
        fig = res.plot()
    values, edges = fig.axes[0].patches[-1].get_data()[:2]
    assert np.all(np.isfinite(edges))
    assert np.sum(values * np.diff(edges)) == pytest.approx(1.0 - 1.0 / res.n_particles)
    kres = _with_nan(kinetic[1], "states", (2, 0, 1))
    with pytest.warns(RuntimeWarning, match="1 at t = 1;"):
        fig = kres.plot()
    assert all(np.all(np.isfinite(a.get_xlim() + a.get_ylim())) for a in fig.axes)
    with pytest.warns(RuntimeWarning, match="1 at t = 1;"):
        kres.animate(tmp_path / "k.gif")
    with pytest.warns(RuntimeWarning, match="1 at t = 1;"):
        fpgen.plot_density_and_ensemble(ou_1d[0], res)


def test_nan_densities_side_by_side_keep_a_finite_scale_with_a_warning(ou_1d, kinetic):
    # plot_density_and_ensemble: one NaN cell at t = 0.5 made the shared colour scale NaN, so
    # every panel (the particles' too, at every time) was drawn blank or in one colour, and
    # nothing was said; the 1-D comparison titled "L1 = nan" without a word either.
    ksol = _with_nan(kinetic[0], "densities", (1, 3, 3))
    with pytest.warns(RuntimeWarning, match=r"density holds non-finite .*: 1 at t = 0.5;"):
        fig = fpgen.plot_density_and_ensemble(ksol, kinetic[1])
    clims = {m.get_clim() for a in fig.axes for m in a.collections
             if isinstance(m, matplotlib.collections.QuadMesh)}
    assert len(clims) == 1
    vmin, vmax = clims.pop()
    assert vmin == 0.0 and np.isfinite(vmax) and vmax > 0
    sol = _with_nan(ou_1d[0], "densities", (2, 5))
    with pytest.warns(RuntimeWarning, match="1 at t = 0.5;"):
        fpgen.plot_density_and_ensemble(sol, ou_1d[1], times=[0.5, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fpgen.plot_density_and_ensemble(sol, ou_1d[1], times=[0.0, 1.0])  # finite: no warning


def test_a_chain_of_three_coordinates_draws_the_joint_law_of_0_and_1(tmp_path):
    # plot_density's docstring and docs/plotting.md: "a chain of several coordinates: the joint
    # law of coordinates 0 and 1 as images"; with 3 coordinates it drew coordinate 0's bars.
    mc = fpgen.MarkovChain.uniform(3, 1.0, dim=3)
    p = np.zeros((3, 3, 3))
    p[0, 1, 2] = 1.0
    sol = fpgen.solve_density(mc, p, None, (0, 1), save_at=[0.0, 0.5, 1.0])
    fig = sol.plot()
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 3 and panels[0].get_ylabel() == "state of coordinate 1"
    np.testing.assert_allclose(panels[-1].images[0].get_array(), sol.final.sum(axis=2).T)
    assert len(sol.plot(axes=2).axes[0].patches) == 3 * 3  # one coordinate's bars on request
    assert _gif_frames(sol.animate(tmp_path / "chain3.gif")) == 3


def test_a_time_that_is_not_a_number_is_named(ou_1d):
    # t="end" failed with numpy's "could not convert string to float: 'end'", naming no argument.
    sol, res = ou_1d
    for obj, what in ((sol, "solution"), (res, "result")):
        with pytest.raises(ValueError, match=r"t must be a save time or a sequence of save times "
                                             rf"\(numbers\) of the {what}, whose save times are "
                                             r"\[0.0, 0.25, .*got 'end'"):
            obj.plot(t="end")
        with pytest.raises(ValueError, match=r"got \[\]"):
            obj.plot(t=[])
    with pytest.raises(ValueError, match=r"times must be a save time .* common save times are "
                                         r"\[0.0, .*got 'end'"):
        fpgen.plot_density_and_ensemble(sol, res, times="end")


def test_a_title_is_kept_when_drawing_into_given_axes(ou_1d, kinetic):
    # With ax=..., title was dropped without a word; it now goes above the given axes.
    fig, (left, right) = plt.subplots(1, 2)
    ksol, kres = kinetic
    assert ksol.plot(0.5, ax=left, title="grid") is fig
    assert left.get_title() == "grid\nt = 0.5" and fig._suptitle is None
    ou_1d[1].plot(1.0, ax=right, title="particles")
    assert right.get_title() == "particles"
    assert kres.plot(0.5, ax=plt.subplots()[1], title="scatter").axes[0].get_title() \
        .startswith("scatter\nt = 0.5")


def test_a_bad_dpi_or_fps_is_named_before_anything_is_drawn(ou_1d, tmp_path):
    # dpi=0 / -5 / "high" failed inside matplotlib with "IndexError: list index out of range".
    sol, res = ou_1d
    for dpi in (0, -5, "high", float("nan")):
        for obj in (sol, res):
            with pytest.raises(ValueError, match=rf"dpi must be a positive number of dots per "
                                                 rf"inch .*got {re.escape(repr(dpi))}"):
                obj.animate(tmp_path / "movie.gif", dpi=dpi)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        sol.animate(tmp_path / "movie.gif", fps=True)
    assert not (tmp_path / "movie.gif").exists()
    assert _gif_frames(sol.animate(tmp_path / "fine.gif", dpi=40.5)) == len(TIMES)



def test_axes_that_are_not_integers_are_named(kinetic):
    # axes=True drew the velocity axis (True taken as 1); axes=1.5 failed with "'float' object
    # is not iterable".
    sol, _ = kinetic
    for bad in (True, (0, True), 1.5):
        with pytest.raises(ValueError, match=r"axes must be one axis or a pair of axes "
                                             rf"\(integers\); got {re.escape(repr(bad))}"):
            sol.plot(axes=bad)


def test_kinetic_ensembles_are_drawn_in_x1_v1_reversed_and_in_two_dimensions():
    # A reversed kinetic run (class ReversedDiffusion) was labelled x1 / x2 although its states
    # are (x, v); a 2-D kinetic run drew x1 against x2 where its grid density and the docs show
    # (x1, v1).
    kin = fpgen.KineticLangevin(1)
    p0 = fpgen.Gaussian([1.0, 0.0], 0.2 * np.eye(2))
    rev = kin.reverse(kin.exact_score(p0), lam=1.0, T=1.0)
    res = fpgen.simulate(rev, kin.equilibrium, (0, 0.9), dt=0.1, n_particles=200, seed=1)
    ax = res.plot().axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "v")
    assert res.plot(coord=1).axes[0].get_xlabel() == "v"
    k2 = fpgen.KineticLangevin(2)
    states = np.random.default_rng(0).normal(size=(50, 4)) * [1.0, 2.0, 3.0, 4.0]
    res2 = fpgen.simulate(k2, states, (0, 0.1), dt=0.1, method="exact", seed=1,
                          save_at=[0.0, 0.1])
    ax = res2.plot(t=0.0).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "v1")
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), states[:, [0, 2]])
    ou = fpgen.OrnsteinUhlenbeck(3)
    res3 = fpgen.simulate(ou, states[:, :3], (0, 0.1), dt=0.1, save_at=[0.0, 0.1])
    ax = res3.plot(t=0.0).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), states[:, :2])


def test_a_scatter_of_many_particles_draws_the_whole_ensemble():
    # max_points kept the first 5000 particles: an ensemble started as 8000 samples of one mode
    # followed by 8000 of another was drawn (and its axis limits set) as the first mode alone.
    ou = fpgen.OrnsteinUhlenbeck(dim=2)
    rng = np.random.default_rng(0)
    x0 = np.concatenate([rng.normal([-3, 0], 0.2, (8000, 2)), rng.normal([3, 0], 0.2, (8000, 2))])
    res = fpgen.simulate(ou, x0, (0, 0.01), dt=0.01, save_at=[0.0, 0.01])
    ax = res.plot(t=0.0).axes[0]
    drawn = ax.collections[0].get_offsets()
    assert len(drawn) == 5000 and ax.get_title() == "t = 0 (5000 of 16000 particles)"
    assert 0.45 < np.mean(drawn[:, 0] > 0) < 0.55
    assert ax.get_xlim()[0] < -3 < 3 < ax.get_xlim()[1]
    assert len(res.plot(t=0.0, max_points=20000).axes[0].collections[0].get_offsets()) == 16000
