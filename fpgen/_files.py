"""Reading fpgen's own files safely: ``.npz`` archives of plain arrays (results, solutions).

Nothing here ever unpickles: every archive is opened with ``allow_pickle=False`` and a file
that is not an ``.npz`` archive (a text file, an empty or truncated file, a single ``.npy``
array, a pickle) is refused with a :class:`FileFormatError` that names the path and says what
the file is instead.

Paths follow :func:`numpy.savez`: a path that does not end in ``.npz`` gets ``.npz`` appended,
on writing and on reading, so ``obj.save("run")`` and ``load("run")`` name the same file
``run.npz``.  (Reading falls back to the path as given when only that file exists, e.g. a
result file renamed without its suffix.)  Open file objects are used as they are.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib

import numpy as np

__all__ = ["FileFormatError", "FileMissingError", "npz_target", "write_npz", "read_npz", "json_entry",
           "damaged", "check_numeric", "describe_path", "existing_file", "file_head",
           "describe_head", "ZIP_MAGIC"]

#: the first bytes of a zip archive (a member header, an empty archive's directory)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


class FileFormatError(ValueError):
    """A file given to fpgen is not what the call reads: not an fpgen file, empty, truncated,
    corrupt, or holding something fpgen never writes (pickled objects, foreign code).  The
    message names the path and what is wrong.  Nothing of the file was unpickled or run."""


class FileMissingError(FileFormatError, FileNotFoundError):
    """The file to read does not exist (also a :class:`FileNotFoundError`)."""


def _is_file_object(path) -> bool:
    return hasattr(path, "read") or hasattr(path, "write")


def describe_path(path) -> str:
    """The path as messages show it."""
    if _is_file_object(path):
        return repr(getattr(path, "name", path))
    return repr(os.fspath(path))


def npz_target(path, what: str):
    """The file that ``save`` writes for ``path``: ``.npz`` appended when missing (as
    :func:`numpy.savez` does); an open file object as it is."""
    if _is_file_object(path):
        if isinstance(path, io.TextIOBase):
            raise TypeError(f"{what}: the file {describe_path(path)} is open in text mode, but an "
                            ".npz archive is binary; open it with mode 'wb' to save or 'rb' to "
                            "load (or pass the path itself)")
        return path
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"{what}: the path must be a str, an os.PathLike or an open binary file; "
                        f"got {type(path).__name__}") from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    return p if p.endswith(".npz") else p + ".npz"


def write_npz(target, arrays: dict, *, compressed: bool) -> None:
    """Write ``arrays`` as an ``.npz`` archive to ``target`` (a path from :func:`npz_target`, or
    an open binary file).

    A path is written atomically: into a temporary file beside it, renamed over ``target`` only
    once complete, so an interrupted or failed save (Ctrl-C, a full disk, an error while
    writing) leaves an existing file at ``target`` as it was, and no partial file behind.  A
    symbolic link is written through (its target is replaced); an overwritten file keeps its
    permissions."""
    save = np.savez_compressed if compressed else np.savez
    if _is_file_object(target):
        save(target, **arrays)
        return
    final = os.path.realpath(target) if os.path.islink(target) else target
    tmp = f"{final}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    # os.open applies the umask to 0o666, as open(target, "wb") would
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            save(f, **arrays)
        if os.path.exists(final):  # an overwritten file keeps its permissions
            os.chmod(tmp, os.stat(final).st_mode & 0o7777)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def damaged(shown: str, kind: str, entry: str, expected: str, seen: str) -> FileFormatError:
    """The error for a saved ``kind`` (e.g. "DensitySolution") whose ``entry`` (as shown, e.g.
    "'times'") is not what its writer stores: a damaged or hand-edited file."""
    return FileFormatError(f"{shown}: the saved {kind}'s {entry} should be {expected}, but it is "
                           f"{seen} (the file is damaged or was edited; save it again)")


def check_numeric(arrays: dict, keys, shown: str, kind: str) -> None:
    """Refuse (:func:`damaged`) an entry among ``keys`` of ``arrays`` that is not numeric."""
    for key in keys:
        if key in arrays and arrays[key].dtype.kind not in "biuf":
            raise damaged(shown, kind, repr(key), "an array of numbers",
                          f"of dtype {arrays[key].dtype}")


def existing_file(path, what: str, tried: str | None = None):
    """``path`` when it is an existing file (or an open file object), else
    :class:`FileMissingError` / :class:`FileFormatError` (a directory); ``tried`` describes
    the path in the message."""
    if _is_file_object(path):
        return path
    target = os.fsdecode(os.fspath(path))
    if os.path.isdir(target):
        raise FileFormatError(f"cannot read {what} from {target!r}: it is a directory; give the "
                              "path of a file in it")
    if not os.path.exists(target):
        raise FileMissingError(f"cannot read {what}: no file {tried or repr(target)}")
    return target


def _read_target(path, what: str):
    """The file to read for ``path`` (``.npz`` appended as on saving, else the path itself)."""
    target = npz_target(path, what)
    if _is_file_object(target):
        return target
    given = os.fsdecode(os.fspath(path))
    if not os.path.exists(target) and target != given and (os.path.isfile(given)
                                                            or os.path.isdir(given)):
        target = given  # a renamed file is read as it is; a directory is named as such
    tried = (repr(target) if target == given else
             f"{target!r} ({given!r} with '.npz' appended, as save() names it)")
    return existing_file(target, what, tried)


def file_head(target, n: int = 64) -> bytes:
    """The first ``n`` bytes of a file (an open file object is left where it was)."""
    if _is_file_object(target):
        pos = target.tell()
        head = target.read(n)
        target.seek(pos)
        return head
    with open(target, "rb") as f:
        return f.read(n)


def describe_head(head: bytes) -> str:
    """What a file that is not a zip archive is, from its first bytes (for messages)."""
    if head.startswith(_NPY_MAGIC):
        return "a single NumPy array (.npy format, as numpy.save writes it), not an .npz archive"
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"}q", b"]q", b"(i", b"cb"):
        return "a Python pickle, which fpgen never writes and never loads"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not a zip archive (it starts with the bytes {head[:16]!r})"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"a text file (it starts with {text[:40]!r}), not a zip archive"
    return f"not a zip archive (it starts with the bytes {head[:16]!r})"


def read_npz(path, what: str, writer: str) -> tuple[str, dict[str, np.ndarray]]:
    """All arrays of the ``.npz`` archive at ``path`` (``.npz`` appended as on saving), read
    without unpickling anything; returns ``(the path read as messages show it, arrays)``.

    ``what`` names what the caller reads (e.g. "an fpgen SimulationResult") and ``writer`` the
    call that writes such files (e.g. "SimulationResult.save"), for the messages.  Raises
    :class:`FileMissingError` for a missing file and :class:`FileFormatError` for anything
    that is not an intact ``.npz`` archive of plain arrays.
    """
    target = _read_target(path, what)
    shown = describe_path(target)
    head = file_head(target)
    if not head and _is_file_object(target) and target.tell() > 0:
        raise FileFormatError(f"{shown} is an open file read to its end (at byte "
                              f"{target.tell()}): nothing is left to read as {what} file; "
                              "call seek(0) on it first (after save(f), f is at its end)")
    if not head:
        raise FileFormatError(f"{shown} is empty (0 bytes), not {what} file ({writer} writes "
                              "an .npz archive); was the write interrupted?")
    if not head.startswith(ZIP_MAGIC):
        raise FileFormatError(f"{shown} is {describe_head(head)}: it is not {what} file (an .npz "
                              f"archive written by {writer}); nothing was loaded")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(target, allow_pickle=False) as data:
            for name in data.files:
                value = data[name]
                if not isinstance(value, np.ndarray):
                    raise FileFormatError(
                        f"{shown} is a zip archive whose entry {name!r} is not a NumPy array: it "
                        f"is not {what} file (written by {writer})")
                arrays[name] = value
    except FileFormatError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise FileFormatError(
                f"{shown} holds a pickled Python object (an object array), which fpgen never "
                f"writes: it is not {what} file, and it was not unpickled") from None
        raise FileFormatError(f"{shown} is a damaged .npz archive ({exc}); it cannot be read "
                              f"as {what} file") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, KeyError, RuntimeError) as exc:
        raise FileFormatError(
            f"{shown} is a truncated or corrupt .npz archive ({type(exc).__name__}: {exc}); it "
            f"cannot be read as {what} file (was the write interrupted?)") from None
    return shown, arrays


def json_entry(arrays: dict, key: str, shown: str, what: str) -> dict:
    """The JSON object stored as the string array ``arrays[key]``."""
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in "US":
        raise FileFormatError(f"{shown}: its {key!r} entry is not a JSON string (dtype "
                              f"{value.dtype}, shape {value.shape}): it is not {what} file")
    try:
        meta = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{shown}: its {key!r} entry is not valid JSON ({exc}): it is not "
                              f"{what} file, or the file is damaged") from None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{shown}: its {key!r} entry is not a JSON object: it is not "
                              f"{what} file")
    return meta
