"""Result files: ``load_result`` and ``DensitySolution.load`` refuse anything that is not their own
file with an fpgen error naming the path (never numpy's ``allow_pickle`` advice, never unpickling),
and ``save(path)`` / ``load(path)`` name the same file (``.npz`` appended as numpy does)."""

import io
import json
import os
import pickle

import numpy as np
import pytest

import fpgen
from fpgen import DensitySolution, FileFormatError, load_result
from fpgen._files import FileMissingError

OU = fpgen.OrnsteinUhlenbeck(1)


def _result():
    return fpgen.simulate(OU, np.zeros((20, 1)), (0.0, 1.0), dt=0.5, save_at=[0.5, 1.0], seed=2)


def _solution():
    return fpgen.solve_density(fpgen.MarkovChain.uniform(3, 1.0), np.array([1.0, 0.0, 0.0]), None,
                               (0.0, 1.0), save_at=[0.5, 1.0])


class _Payload:
    """Unpickling this creates the marker file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


LOADERS = [pytest.param(load_result, "SimulationResult", id="load_result"),
           pytest.param(DensitySolution.load, "DensitySolution", id="DensitySolution.load")]


def _check(loader, path, *words):
    with pytest.raises(FileFormatError) as info:
        loader(path)
    msg = str(info.value)
    assert os.path.basename(str(getattr(path, "name", path))) in msg, msg
    assert "allow_pickle" not in msg, msg
    for w in words:
        assert w in msg, msg
    return info.value


def test_save_and_load_name_the_same_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res, sol = _result(), _solution()
    assert res.save("run") == "run.npz" and os.listdir(".") == ["run.npz"]
    back = load_result("run")
    np.testing.assert_array_equal(back.states, res.states)
    assert load_result("run.npz").settings == res.settings
    assert sol.save(tmp_path / "sol") == str(tmp_path / "sol.npz")
    np.testing.assert_array_equal(DensitySolution.load(tmp_path / "sol").densities, sol.densities)
    np.testing.assert_array_equal(DensitySolution.load("sol.npz").densities, sol.densities)
    # a file renamed without its suffix is still found under the name given
    os.rename("run.npz", "renamed")
    np.testing.assert_array_equal(load_result("renamed").final, res.final)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_text_file_is_refused(tmp_path, loader, kind):
    p = tmp_path / "notes.npz"
    p.write_text("time,x\n0.0,1.0\n")
    _check(loader, p, "text file", kind)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_an_empty_file_is_refused(tmp_path, loader, kind):
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    _check(loader, p, "empty", kind)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_truncated_archive_is_refused(tmp_path, loader, kind):
    good = tmp_path / "good.npz"
    (_result() if kind == "SimulationResult" else _solution()).save(good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(data[:cut])
        _check(loader, p, "truncated or corrupt", kind)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_renamed_npy_is_refused(tmp_path, loader, kind):
    np.save(tmp_path / "array.npy", np.arange(5.0))
    os.rename(tmp_path / "array.npy", tmp_path / "array.npz")
    _check(loader, tmp_path / "array.npz", ".npy", kind)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_missing_file_is_an_fpgen_error_and_a_file_not_found(tmp_path, loader, kind):
    err = _check(loader, tmp_path / "nowhere", "no file", "nowhere.npz")
    assert isinstance(err, FileMissingError) and isinstance(err, FileNotFoundError)
    assert isinstance(err, ValueError)
    with pytest.raises(FileNotFoundError):
        loader(tmp_path / "nowhere.npz")


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_pickles_are_refused_and_never_unpickled(tmp_path, loader, kind):
    marker = tmp_path / "UNPICKLED"
    # the payload is live: plain unpickling runs it
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()
    marker.unlink()
    # a pickle file named .npz
    p = tmp_path / "evil.npz"
    p.write_bytes(pickle.dumps({"__meta__": _Payload(marker)}))
    _check(loader, p, "pickle")
    # an .npz archive holding a pickled object array under the expected names
    q = tmp_path / "objects.npz"
    np.savez(q, __meta__=np.array([_Payload(marker)], dtype=object),
             meta=np.array([_Payload(marker)], dtype=object), times=np.zeros(1))
    _check(loader, q, "pickled Python object", "not unpickled")
    assert not marker.exists()


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_another_archive_is_refused_with_what_it_holds(tmp_path, loader, kind):
    p = tmp_path / "other.npz"
    np.savez(p, a=np.zeros(3), b=np.ones(2))
    _check(loader, p, "not a saved fpgen", kind, "['a', 'b']")
    bad = tmp_path / "badmeta.npz"
    np.savez(bad, __meta__=np.array("{not json"), meta=np.array("{not json"), times=np.zeros(1))
    _check(loader, bad, "not valid JSON")


def test_each_loader_names_the_other_kind_of_file(tmp_path):
    _result().save(tmp_path / "r")
    _solution().save(tmp_path / "s")
    _check(load_result, tmp_path / "s.npz", "DensitySolution", "DensitySolution.load")
    _check(DensitySolution.load, tmp_path / "r.npz", "SimulationResult", "load_result")


def test_a_damaged_result_is_named(tmp_path):
    p = tmp_path / "nometa.npz"
    np.savez(p, __meta__=np.array('{"format": "fpgen.particles.SimulationResult/1"}'))
    _check(load_result, p, "lacks", "settings", "'times'")
    q = tmp_path / "future.npz"
    np.savez(q, __meta__=np.array('{"format": "fpgen.particles.SimulationResult/99"}'))
    _check(load_result, q, "unknown result format")


def test_open_file_objects_round_trip(tmp_path):
    res = _result()
    with open(tmp_path / "f.bin", "wb") as f:
        assert res.save(f) is None
    with open(tmp_path / "f.bin", "rb") as f:
        np.testing.assert_array_equal(load_result(f).states, res.states)
    with open(tmp_path / "f.bin", "rb") as f:
        _check(DensitySolution.load, f, "SimulationResult")


def _edited(tmp_path, name, **changes):
    """A saved 1-D grid solution with some entries replaced (a damaged or hand-edited file)."""
    sol = fpgen.solve_density(OU, fpgen.Gaussian([1.0], 0.2), fpgen.Grid((-4.0, 4.0), 20),
                              (0.0, 1.0), dt=0.25, save_at=[0.0, 0.5, 1.0])
    with np.load(sol.save(tmp_path / "good")) as f:
        arrays = dict(f)
    arrays.update(changes)
    np.savez(tmp_path / name, **arrays)
    return tmp_path / f"{name}.npz", arrays


def test_a_solution_whose_arrays_do_not_fit_together_is_refused(tmp_path):
    # These loaded without a word: densities of another grid, times or mass for fewer saves
    # (densities then paired with the wrong times), a 1-D densities array, text as densities.
    good, arrays = _edited(tmp_path, "same")
    assert DensitySolution.load(good).densities.shape == (3, 20)
    dens = arrays["densities"]
    cases = {"grid": (dict(densities=dens[:, :15]), ["'densities'", "(3, 20)", "(3, 15)"]),
             "times": (dict(times=arrays["times"][:2]), ["'times'", "(3,)", "(2,)"]),
             "mass": (dict(mass=arrays["mass"][:1]), ["'mass'", "(3,)", "(1,)"]),
             "flat": (dict(densities=dens[0]), ["'densities'", "at least 2 dimensions"]),
             "text": (dict(densities=np.array(["a", "b"])), ["'densities'", "numbers", "<U1"])}
    for name, (changes, words) in cases.items():
        path, _ = _edited(tmp_path, name, **changes)
        _check(DensitySolution.load, path, "damaged or was edited", *words)
    meta = json.loads(str(arrays["meta"]))
    meta["info"] = ["not", "a", "dict"]
    path, _ = _edited(tmp_path, "info", meta=np.array(json.dumps(meta)))
    _check(DensitySolution.load, path, "meta['info']", "JSON object", "list")


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_directory_is_named_as_such(tmp_path, loader, kind):
    # load(<a directory>) said "no file '<dir>.npz'", as if the directory were not there.
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(FileFormatError, match=r"runs': it is a directory; give the path of a "
                                              r"file in it") as info:
        loader(folder)
    assert not isinstance(info.value, FileNotFoundError)


def test_a_result_whose_arrays_do_not_fit_together_is_refused(tmp_path):
    # States for fewer saves than 'times' (so at(t) would pair them with the wrong times), or
    # text as states, loaded without a word.
    with np.load(_result().save(tmp_path / "good")) as f:
        arrays = dict(f)
    assert load_result(tmp_path / "good.npz").states.shape == (2, 20, 1)
    cases = {"short": (dict(states=arrays["states"][:1]), ["'states'", "(2, as 'times' has)",
                                                          "(1, 20, 1)"]),
             "times": (dict(times=arrays["times"][None]), ["'times'", "1-D", "(1, 2)"]),
             "text": (dict(states=np.array(["a", "b"])), ["'states'", "numbers", "<U1"])}
    for name, (changes, words) in cases.items():
        np.savez(tmp_path / name, **{**arrays, **changes})
        _check(load_result, tmp_path / f"{name}.npz", "damaged or was edited", *words)


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_file_object_left_at_its_end_says_seek(loader, kind):
    # save(buf) then load(buf) without buf.seek(0) said the file "is empty (0 bytes) ... was
    # the write interrupted?", though it holds the whole archive.
    buf = io.BytesIO()
    (_result() if kind == "SimulationResult" else _solution()).save(buf)
    with pytest.raises(FileFormatError, match=r"read to its end \(at byte [1-9]\d*\).*seek\(0\)"):
        loader(buf)
    buf.seek(0)
    assert type(loader(buf)).__name__ == kind


@pytest.mark.parametrize("loader, kind", LOADERS)
def test_a_file_opened_in_text_mode_is_named(tmp_path, loader, kind):
    # open(path) (text mode) failed with a UnicodeDecodeError on loading and "write() argument
    # must be str, not bytes" on saving.
    obj = _result() if kind == "SimulationResult" else _solution()
    path = obj.save(tmp_path / "run")
    with open(path) as f, pytest.raises(TypeError, match=r"run.npz' is open in text mode.*'rb'"):
        loader(f)
    with open(tmp_path / "w.npz", "w") as f, pytest.raises(
            TypeError, match=rf"{kind}.save: the file .*w.npz' is open in text mode.*'wb'"):
        obj.save(f)


def test_info_that_json_cannot_hold_is_named_on_saving(tmp_path):
    # An object in info was written as its repr() and came back from load() as a string,
    # without a word.
    sol = _solution()
    sol.info.update(shape=(3,), weights=np.array([0.5, 0.5]), equation_object=OU)
    with pytest.warns(UserWarning, match=r"info\['equation_object'\] \(OrnsteinUhlenbeck\) "
                                         r"cannot be stored as JSON.*repr\(\)") as record:
        path = sol.save(tmp_path / "info")
    assert len(record) == 1 and "shape" not in str(record[0].message)
    back = DensitySolution.load(path).info
    assert back["shape"] == [3] and back["weights"] == [0.5, 0.5]
    assert back["equation_object"] == repr(OU)


@pytest.mark.parametrize("make, loader", [(_result, load_result), (_solution, DensitySolution.load)],
                         ids=["SimulationResult", "DensitySolution"])
def test_an_interrupted_save_keeps_the_file_it_would_replace(tmp_path, monkeypatch, make, loader):
    # save() wrote straight into the target: a save interrupted while overwriting (Ctrl-C, a
    # full disk) destroyed the previous results, leaving a truncated archive behind.
    obj = make()
    path = obj.save(tmp_path / "run")
    before = open(path, "rb").read()
    os.chmod(path, 0o640)
    real_write = np.lib.format.write_array
    calls = []

    def interrupted(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array of the archive: the first is written already
            raise KeyboardInterrupt
        return real_write(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        obj.save(tmp_path / "run")
    monkeypatch.undo()
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["run.npz"]
    assert len(loader(path).times) == 2
    # a complete save replaces the file, keeps its permissions, and writes through a link
    os.symlink(path, tmp_path / "link.npz")
    assert obj.save(tmp_path / "link") == str(tmp_path / "link.npz")
    assert os.path.islink(tmp_path / "link.npz") and len(loader(tmp_path / "link").times) == 2
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "run.npz"]
    assert os.stat(path).st_mode & 0o777 == 0o640
    mask = os.umask(0)
    os.umask(mask)
    fresh = obj.save(tmp_path / "fresh")
    assert os.stat(fresh).st_mode & 0o777 == 0o666 & ~mask
