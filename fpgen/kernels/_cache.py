"""Keep numba's on-disk cache honest about the files a kernel inlines.

numba keys a cached kernel on the *one* source file that defines it (its modification time and
size); a change in a function it calls from another file — the per-particle steps in
``particle_steps.py``, the generator in ``_philox.py`` — is not seen, and the stale machine code
would be loaded (numba documents this limitation).  :func:`guard_cache` records a hash of those
other files next to the module's cache entries and removes the entries when the hash changes, so
that an edited or upgraded fpgen recompiles instead of running old kernels.

It uses numba's cache locators (the same search numba performs: ``NUMBA_CACHE_DIR``, the
``__pycache__`` beside the source, the user-wide cache) and never fails an import: if the cache
directory cannot be found or written, it does nothing (numba then cannot cache either).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
from collections.abc import Callable, Iterable

__all__ = ["guard_cache", "cache_directory"]


def cache_directory(py_func: Callable) -> str | None:
    """The directory where numba caches kernels defined next to ``py_func`` (None if none)."""
    try:
        from numba.core.caching import CacheImpl

        source = os.path.abspath(py_func.__code__.co_filename)
        for cls in CacheImpl._locator_classes:
            locator = cls.from_function(py_func, source)
            if locator is not None:
                return locator.get_cache_path()
    except Exception:  # a numba without these internals: leave the cache alone
        return None
    return None


def _digest(paths: Iterable[str]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:32]


def guard_cache(py_func: Callable, dependencies: Iterable[str]) -> bool:
    """Invalidate the cached kernels of ``py_func``'s module if any of ``dependencies`` changed.

    Parameters
    ----------
    py_func : any plain Python function defined in the module whose kernels are cached (it
        locates the cache directory and names the module).
    dependencies : source files whose functions the module's kernels inline.

    Returns True when stale entries were removed.
    """
    directory = cache_directory(py_func)
    if directory is None:
        return False
    module = os.path.splitext(os.path.basename(py_func.__code__.co_filename))[0]
    try:
        digest = _digest(dependencies)
        stamp = os.path.join(directory, f"{module}.fpgen-deps")
        with contextlib.suppress(FileNotFoundError), open(stamp) as f:
            if f.read().strip() == digest:
                return False
        removed = False
        for entry in glob.glob(os.path.join(glob.escape(directory), f"{module}.*.nb[ic]")):
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                os.remove(entry)
                removed = True
        os.makedirs(directory, exist_ok=True)
        tmp = f"{stamp}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp, stamp)
        return removed
    except OSError:  # a read-only location: numba cannot write there either
        return False
