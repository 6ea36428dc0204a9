"""Argument checks shared by the public constructors: clear, early errors.

Every check names the argument, says what was expected and what was seen.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_float_array(value, name: str, *, ndim: int | None = None) -> np.ndarray:
    """``value`` as a finite float64 array, or a ValueError/TypeError naming ``name``."""
    refuse_complex(value, name)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of real numbers; got {type(value).__name__}"
        ) from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite; it has {bad} NaN/inf entr{'y' if bad == 1 else 'ies'}")
    return arr


def refuse_complex(value, name: str) -> None:
    """A TypeError naming ``name`` when ``value`` holds complex numbers (NumPy would drop their
    imaginary parts with only a warning)."""
    try:
        complex_values = np.iscomplexobj(value)
    except (TypeError, ValueError):  # ragged or foreign objects: the conversion says why
        return
    if complex_values:
        raise TypeError(f"{name} must hold real numbers; got complex values (dtype "
                        f"{np.asarray(value).dtype}): pass the real part (np.real) if that is "
                        "what is meant")


def as_square_matrix(value, name: str, size: int | None = None) -> np.ndarray:
    """A finite square float64 matrix (optionally of a given size)."""
    arr = as_float_array(value, name)
    if arr.ndim == 0 and size is not None:
        return np.eye(size) * float(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} must be {size}x{size}; got shape {arr.shape}")
    return arr


def as_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def as_real(value, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real scalar, optionally > 0 or >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        arr = np.asarray(value)
        if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{name} must be a real number; got {value!r}")
        value = arr.item()
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return value


def as_time(t, name: str = "t") -> float | np.ndarray:
    """A finite, non-negative time or array of times (returned as float or float array)."""
    arr = as_float_array(t, name)
    if np.any(arr < 0):
        raise ValueError(
            f"{name} must be >= 0 (t = 0 is the data, time runs toward equilibrium); "
            f"got min {arr.min()}"
        )
    return float(arr) if arr.ndim == 0 else arr


def as_points(x, dim: int, name: str = "x") -> np.ndarray:
    """Points of shape (..., dim) as float64; a bare vector of length dim is accepted."""
    arr = as_float_array(x, name)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) (last axis = dimension {dim}); got shape {arr.shape}"
        )
    return arr


def check_symmetric(mat: np.ndarray, name: str, rtol: float = 1e-10) -> np.ndarray:
    """Raise unless ``mat`` is symmetric to ``rtol`` relative to its largest entry; symmetrise."""
    scale = max(float(np.max(np.abs(mat))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(mat - mat.T)))
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric; max |{name} - {name}'| = {asym:.3g} "
            f"(largest entry {scale:.3g})"
        )
    return 0.5 * (mat + mat.T)


def check_psd(mat: np.ndarray, name: str, rtol: float = 1e-10) -> np.ndarray:
    """Raise unless the symmetric ``mat`` is positive semi-definite (to ``rtol``)."""
    mat = check_symmetric(mat, name, rtol)
    eig = np.linalg.eigvalsh(mat)
    scale = max(float(np.max(np.abs(eig))), np.finfo(float).tiny)
    if eig[0] < -rtol * scale * mat.shape[0]:
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {eig[0]:.3g}"
        )
    return mat


def as_rng(rng) -> np.random.Generator:
    """``None``, an int seed, a SeedSequence or a Generator, as a numpy Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be None, an integer seed, a SeedSequence or a numpy Generator; got {rng!r}"
    )


def as_observation_operator(A, dim: int | None = None, name: str = "A"
                            ) -> tuple[np.ndarray, np.ndarray | None]:
    """An observation operator as ``(matrix (m, d), mask (d,) or None)``.

    ``A`` is a 2-D array (m, d) — the linear map of ``y = A x + noise`` — or a 1-D *boolean*
    mask of length d, meaning the selection of the coordinates where it is True (then the
    matrix is the m rows of the identity).  ``dim`` (when given) is the data dimension d.
    """
    arr = np.asarray(A)
    if arr.ndim == 1:
        if arr.dtype != np.bool_:
            raise TypeError(
                f"{name} as a 1-D array is a coordinate mask and must be boolean; got dtype "
                f"{arr.dtype} (pass a 2-D (m, d) matrix for a general linear observation)"
            )
        if dim is not None and arr.shape[0] != dim:
            raise ValueError(
                f"{name} (a mask) must have length {dim}, the data dimension; got {arr.shape[0]}"
            )
        if not arr.any():
            raise ValueError(f"{name} (a mask) selects no coordinate: it is all False")
        return np.eye(arr.shape[0])[arr], arr.copy()
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be an (m, d) matrix or a boolean mask of length d; got shape {arr.shape}"
        )
    mat = as_float_array(arr, name)
    if dim is not None and mat.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (m, {dim}) for {dim}-dimensional data; got {mat.shape}"
        )
    if mat.shape[0] == 0:
        raise ValueError(f"{name} has no rows: it observes nothing")
    return mat, None
