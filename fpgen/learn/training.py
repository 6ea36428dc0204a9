r"""Training: seeded, device-aware, with progress bar, periodic evaluation, EMA and checkpoints.

``fit(model, loss, data, steps=...)`` minimises ``loss(model, batch, generator)`` (any loss of
:mod:`fpgen.learn`) with Adam.  ``data`` is a fixed data set (an array or tensor (n, ...), or a
pair ``(x, labels)``; minibatches are drawn i.i.d. with replacement) or a sampler
``f(n, rng=...)`` (fresh data every step, e.g. ``fpgen.data.checkerboard``).

Defaults (issue 21, measured: see :func:`fit`): a cosine learning rate decaying to 0 over the
planned steps and an exponential moving average of the weights (decay 0.999, warm-up form);
when training returns the model holds the averaged weights, which is what the adapters,
evaluation and :func:`load_model` then use.

Reproducibility: every random draw (minibatch indices, times, noise, fresh data) comes from one
torch generator and one numpy generator seeded by ``seed``; a checkpoint stores the model, the
EMA weights, the optimiser, the step, the learning-rate schedule and both generators' states,
so training resumed from a checkpoint continues exactly as if it had never stopped, and a
model loaded from it gives bit-identical outputs.  (Build the model under
``torch.manual_seed`` for a reproducible initialisation.)

Checkpoints hold tensors and plain values only (dicts, lists, tuples, strings, numbers, None)
and are read with torch's weights-only loading (``torch.load(..., weights_only=True)``): a
file that would run code on loading (a tampered checkpoint, a pickled object from elsewhere)
is refused with :class:`CheckpointError`, and nothing in it runs.

A non-finite loss stops training with :class:`NonFiniteLossError` naming the step.
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._files import ZIP_MAGIC, FileFormatError, describe_head, describe_path, existing_file, file_head
from ._utils import check_model_horizon, model_device_dtype, resolve_device

__all__ = ["Trainer", "fit", "NonFiniteLossError", "TrainHistory", "load_model", "read_checkpoint",
           "CheckpointError"]

_FORMAT = "fpgen.learn.Trainer/1"
#: the entries Trainer.load needs (load_model needs "model" alone)
_TRAINER_KEYS = ("model", "ema", "optimizer", "step", "generator", "rng", "losses", "evaluations")


class CheckpointError(FileFormatError):
    """A file given to :meth:`Trainer.load` / :func:`load_model` is not an fpgen training
    checkpoint, or one that was tampered with (it refers to Python code, which weights-only
    loading refuses to run), truncated or damaged.  A :class:`~fpgen.FileFormatError` (a
    ValueError); the message names the file.  Nothing in the file was run."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass
class TrainHistory:
    """Per-step losses and the periodic evaluations ``(step, value)``."""

    losses: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)


class _Data:
    """Minibatches from an array/tensor (with labels) or from a sampler f(n, rng=...)."""

    def __init__(self, data, device: torch.device, dtype: torch.dtype):
        self.sampler = None
        self.labels = None
        if callable(data) and not isinstance(data, (torch.Tensor, np.ndarray)):
            self.sampler = data
            self.x = None
        elif hasattr(data, "sample") and not isinstance(data, (torch.Tensor, np.ndarray)):
            self.sampler = data.sample
            self.x = None
        else:
            if isinstance(data, (tuple, list)):
                if len(data) != 2:
                    raise ValueError("data must be x or a pair (x, labels)")
                data, labels = data
                self.labels = torch.as_tensor(np.asarray(labels) if not isinstance(
                    labels, torch.Tensor) else labels).long().to(device)
            # detached: a tensor that requires grad must not collect the loss's gradients
            x = data.detach() if isinstance(data, torch.Tensor) else torch.as_tensor(
                np.asarray(data))
            if x.is_floating_point():
                x = x.to(dtype)
            self.x = x.to(device)
            if not torch.all(torch.isfinite(self.x.double())):
                raise ValueError("the training data hold NaN or inf values")
            if self.labels is not None and self.labels.shape[0] != self.x.shape[0]:
                raise ValueError("data and labels must have the same length")
        self.device, self.dtype = device, dtype

    def batch(self, n: int, generator: torch.Generator, rng: np.random.Generator):
        if self.sampler is not None:
            out = self.sampler(n, rng=rng)
            if isinstance(out, tuple):
                x, y = out
                return (self._x(x), torch.as_tensor(np.asarray(y)).long().to(self.device))
            return self._x(out)
        idx = torch.randint(0, self.x.shape[0], (n,), generator=generator,
                            device=generator.device).to(self.device)
        x = self.x[idx]
        return x if self.labels is None else (x, self.labels[idx])

    def _x(self, x):
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
            return torch.as_tensor(x, dtype=self.dtype, device=self.device)
        t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        return (t.to(self.dtype) if t.is_floating_point() else t).to(self.device)


def _adam(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam (AdamW with weight decay), torch's fused implementation where it is available (the
    same update in one kernel: several times faster per step for small networks, CPU included),
    else the default one."""
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    kwargs = {"lr": lr, "weight_decay": weight_decay} if weight_decay else {"lr": lr}
    try:
        return cls(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(model.parameters(), **kwargs)


class Trainer:
    r"""Adam on ``loss(model, batch, generator)``, with the extras of the module docstring.

    Parameters
    ----------
    model : a torch module (moved to ``device``)
    loss : a loss of :mod:`fpgen.learn` (or any ``f(model, batch, generator) -> scalar``)
    data : array/tensor, ``(x, labels)``, or a sampler ``f(n, rng=...)`` / a law with ``.sample``
    steps : the planned number of steps (for the cosine learning-rate schedule)
    batch_size, lr, weight_decay : Adam settings (AdamW when ``weight_decay`` > 0; torch's
        fused implementation where available)
    lr_schedule : ``"cosine"`` (the default) or ``"constant"``; the cosine is
        :math:`\eta_k = \eta\,[f + (1 - f)\,\tfrac12(1 + \cos(\pi u))]`, with
        :math:`u = (k - w)/(\mathrm{steps} - w)` the fraction of the run after
        the warm-up and :math:`f` = ``lr_floor``; either after ``warmup``
        linear warm-up steps (:math:`\eta_k = \eta\,(k + 1)/w` for k < w).  Steps past
        ``steps`` keep the final rate.  :meth:`learning_rate` gives :math:`\eta_k`.
    lr_floor : the cosine's final rate as a fraction of ``lr`` (default 0)
    ema_decay : exponential moving average of the weights (default 0.999; None for none):
        after update k, :math:`\bar w_k = d_k\,\bar w_{k-1} + (1 - d_k)\,w_k`,
        :math:`\bar w_0 = w_0`, with :math:`d_k = \min(d, (1 + k)/(10 + k))` when
        ``ema_warmup`` (default; TensorFlow's ``ExponentialMovingAverage(num_updates=k)``
        form: a short run averages over its last 10 % of steps or so instead of keeping a
        share :math:`d^k` of the initial weights) else :math:`d_k = d`.  When :meth:`train` (and
        :func:`fit`) returns, **the model holds the averaged weights** — so the adapters,
        :meth:`averaged`, evaluation and :func:`load_model` all use them — and the raw weights
        are kept aside (:meth:`raw_model`); the next :meth:`train` / :meth:`train_step` puts
        the raw weights back before it steps.  ``ema_decay=None`` trains and leaves the raw
        weights, as before.
    grad_clip : clip the gradient norm (None for no clipping)
    seed : seeds the torch and numpy generators of every random draw
    device : ``"cpu"``, ``"cuda"``, ``"auto"``
    dtype : the floating dtype the data are cast to (default: the model's, e.g. float64 for a
        ``model.double()``)
    progress : show a tqdm progress bar (off in tests)
    evaluate, eval_every : ``evaluate(model, step) -> float`` every ``eval_every`` steps
        (recorded in ``history.evaluations``)
    checkpoint, checkpoint_every : write a checkpoint to the path ``checkpoint`` every
        ``checkpoint_every`` steps and at the end
    """

    def __init__(self, model: torch.nn.Module, loss: Callable, data: Any, *, steps: int,
                 batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.0,
                 lr_schedule: str = "cosine", warmup: int = 0, lr_floor: float = 0.0,
                 ema_decay: float | None = 0.999, ema_warmup: bool = True,
                 grad_clip: float | None = None, seed: int = 0, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, progress: bool = True,
                 evaluate: Callable | None = None, eval_every: int = 0,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0):
        _check_settings(steps=steps, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
                        warmup=warmup, lr_floor=lr_floor, ema_decay=ema_decay)
        end = getattr(getattr(loss, "path", None), "T", getattr(loss, "T", None))
        if isinstance(end, (int, float)):
            check_model_horizon(model, end, "the loss's times")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.loss = loss
        if dtype is None:
            dtype = model_device_dtype(self.model)[1]
        self.data = _Data(data, self.device, dtype)
        self.total_steps = int(steps)
        self.batch_size = int(batch_size)
        self.lr, self.warmup, self.lr_schedule = float(lr), int(warmup), lr_schedule
        self.lr_floor = float(lr_floor)
        self.grad_clip = grad_clip
        self.progress = progress
        self.evaluate, self.eval_every = evaluate, int(eval_every)
        self.checkpoint_path, self.checkpoint_every = checkpoint, int(checkpoint_every)
        self.optimizer = _adam(self.model, self.lr, weight_decay)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_warmup = bool(ema_warmup)
        self.ema = None if ema_decay is None else _copy_state(self.model)
        self._raw = None  # the raw weights while the model holds the averaged ones
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.rng = np.random.default_rng(int(seed))
        self.step = 0
        self.history = TrainHistory()

    # --- one step --------------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        """The learning rate of the 0-based step ``step`` (see ``lr_schedule``)."""
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.lr_schedule == "cosine":
            frac = min(1.0, (step - self.warmup) / max(1, self.total_steps - self.warmup))
            f = self.lr_floor
            return self.lr * (f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * frac)))
        return self.lr

    def ema_decay_at(self, update: int) -> float:
        """The decay :math:`d_k` of the 1-based update ``k = update`` (see ``ema_decay``)."""
        if self.ema_decay is None:
            raise ValueError("this trainer keeps no average (ema_decay=None)")
        if self.ema_warmup:
            return min(self.ema_decay, (1.0 + update) / (10.0 + update))
        return self.ema_decay

    def _update_ema(self) -> None:
        d = self.ema_decay_at(self.step + 1)
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.is_floating_point():
                    self.ema[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
                else:
                    self.ema[k].copy_(v)

    def train_step(self) -> float:
        """One optimisation step of the raw weights (put back first if the model holds the
        averaged ones); returns the loss (raises on a non-finite loss)."""
        self._use_raw()
        lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            if group["lr"] != lr:
                group["lr"] = lr
        batch = self.data.batch(self.batch_size, self.generator, self.rng)
        loss = self.loss(self.model, batch, self.generator)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss is {value} at step {self.step} (0-based, after {self.step} completed "
                f"steps); parameters are left as they were after step {self.step - 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self._update_ema()
        self.step += 1
        self.history.losses.append(value)
        return value

    def train(self, steps: int | None = None) -> TrainHistory:
        """Run ``steps`` more steps (default: up to the planned total); with an average
        (``ema_decay``) the model holds the averaged weights when it returns."""
        import time

        from tqdm.auto import tqdm

        n = self.total_steps - self.step if steps is None else int(steps)
        start = time.perf_counter()
        bar = tqdm(total=n, disable=not self.progress, desc="train", leave=False)
        avg = None
        try:
            self.model.train()
            for _ in range(n):
                value = self.train_step()
                avg = value if avg is None else 0.98 * avg + 0.02 * value
                bar.update(1)
                if self.progress and self.step % 50 == 0:
                    bar.set_postfix(loss=f"{avg:.4g}")
                if self.eval_every and self.evaluate and self.step % self.eval_every == 0:
                    val = self.evaluate(self.averaged(), self.step)
                    self.history.evaluations.append((self.step, _plain(val)))
                if (self.checkpoint_path and self.checkpoint_every
                        and self.step % self.checkpoint_every == 0):
                    self.save(self.checkpoint_path)
        finally:
            bar.close()
            self.history.seconds += time.perf_counter() - start
        self._use_averaged()
        if self.checkpoint_path:
            self.save(self.checkpoint_path)
        return self.history

    # --- weights and checkpoints ----------------------------------------------------------------
    @property
    def holds_averaged(self) -> bool:
        """Whether the model currently holds the averaged weights (after :meth:`train`)."""
        return self._raw is not None

    def _use_raw(self) -> None:
        if self._raw is not None:
            self.model.load_state_dict(self._raw)
            self._raw = None

    def _use_averaged(self) -> None:
        if self.ema is not None and self._raw is None:
            self._raw = _copy_state(self.model)
            self.model.load_state_dict(self.ema)

    def _raw_state(self) -> dict:
        return self._raw if self._raw is not None else self.model.state_dict()

    def averaged(self) -> torch.nn.Module:
        """A copy of the model with the EMA weights (the model itself when there is no EMA)."""
        if self.ema is None:
            return self.model
        avg = copy.deepcopy(self.model)
        avg.load_state_dict(self.ema)
        return avg

    def raw_model(self) -> torch.nn.Module:
        """A copy of the model with the raw (optimised, not averaged) weights."""
        raw = copy.deepcopy(self.model)
        raw.load_state_dict(self._raw_state())
        return raw

    def state_dict(self) -> dict:
        """Everything a checkpoint holds, as tensors and plain values (what weights-only
        loading reads back)."""
        return {
            "format": _FORMAT,
            "model": self._raw_state(),
            "ema": self.ema,
            "holds_averaged": self.holds_averaged,
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
            "rng": _plain(self.rng.bit_generator.state),
            "losses": [float(v) for v in self.history.losses],
            "evaluations": [(int(k), _plain(v)) for k, v in self.history.evaluations],
            "config": _plain({"lr": self.lr, "warmup": self.warmup,
                              "lr_schedule": self.lr_schedule, "total_steps": self.total_steps,
                              "batch_size": self.batch_size, "ema_decay": self.ema_decay,
                              "lr_floor": self.lr_floor, "ema_warmup": self.ema_warmup}),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (the model holds the averaged weights again when it
        did at the save)."""
        self._raw = None
        self.model.load_state_dict(state["model"])
        self.ema = None if state["ema"] is None else {
            k: v.to(self.device) for k, v in state["ema"].items()}
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"].cpu() if hasattr(state["generator"], "cpu")
                                 else state["generator"])
        self.rng.bit_generator.state = state["rng"]
        self.history.losses = list(state["losses"])
        self.history.evaluations = [tuple(e) for e in state["evaluations"]]
        if state.get("holds_averaged", False):
            self._use_averaged()

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint (atomically: a temporary file renamed into place)."""
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Resume from a checkpoint written by :meth:`save` (read with weights-only loading:
        nothing in the file runs; :class:`CheckpointError` for a file that is not an intact
        fpgen checkpoint)."""
        state = read_checkpoint(path, self.device)
        missing = [k for k in _TRAINER_KEYS if k not in state]
        if missing:
            raise CheckpointError(
                f"{describe_path(path)} cannot resume training: the checkpoint lacks "
                f"{', '.join(map(repr, missing))} (load_model reads the weights of a checkpoint "
                "that has only 'model')")
        _check_fits(state["model"], self.model, describe_path(path))
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{describe_path(path)} does not fit this trainer: "
                                  f"{type(exc).__name__}: {exc}") from None


def _copy_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_settings(*, steps, batch_size, lr, lr_schedule, warmup, lr_floor, ema_decay) -> None:
    """Clear errors for the Trainer's numeric settings, naming the argument."""
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine'; got {lr_schedule!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0; got {warmup!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
    if not (isinstance(lr_floor, (int, float)) and 0.0 <= lr_floor <= 1.0):
        raise ValueError(f"lr_floor must be a fraction of lr in [0, 1]; got {lr_floor!r}")
    if ema_decay is not None and not (isinstance(ema_decay, (int, float))
                                      and 0.0 <= ema_decay < 1.0):
        raise ValueError(f"ema_decay must be None or a number in [0, 1); got {ema_decay!r}")


def _plain(value):
    """``value`` with NumPy scalars and arrays turned into Python numbers and lists (what
    weights-only loading reads back)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value.item()
    return value


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The contents of an fpgen training checkpoint, read with torch's weights-only loading
    (tensors and plain values only: nothing in the file runs).

    Raises
    ------
    CheckpointError
        naming the file, for a file that is not an fpgen checkpoint: empty, text, a pickle of
        Python objects, a zip that torch cannot read (truncated or damaged), one that refers to
        Python code (tampered or foreign: refused without running it), or a torch file without
        the checkpoint's entries.
    FileMissingError
        (a FileNotFoundError) when there is no such file.
    """
    what = "an fpgen training checkpoint"
    target = existing_file(path, what)
    shown = describe_path(target)
    head = file_head(target)
    if not head:
        raise CheckpointError(f"{shown} is empty (0 bytes), not {what} (Trainer.save writes a "
                              "torch zip archive); was the write interrupted?")
    if not head.startswith(ZIP_MAGIC):
        raise CheckpointError(f"{shown} is {describe_head(head)}: it is not {what} (a torch zip "
                              "archive written by Trainer.save); nothing was loaded or run")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on pickle protocols
            state = torch.load(target, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        code = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{shown} refers to Python code{code} that weights-only loading refuses to run: "
            f"fpgen checkpoints hold only tensors and plain values, so this file was tampered "
            f"with or is not {what}. Nothing in it was run.") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, OSError) as exc:
        raise CheckpointError(f"{shown} is a truncated or damaged torch archive, or not {what} "
                              f"({type(exc).__name__}: {str(exc).strip().split('. ')[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state:
        keys = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{shown} is a torch file but not {what} (no 'model' entry; it holds {keys}). A "
            "bare state_dict loads with model.load_state_dict(torch.load(path, weights_only=True))")
    fmt = state.get("format", _FORMAT)
    if fmt != _FORMAT:
        raise CheckpointError(f"{shown}: unknown checkpoint format {fmt!r} (this fpgen reads "
                              f"{_FORMAT!r})")
    return state


def load_model(path: str | os.PathLike, model: torch.nn.Module, *, ema: bool = True,
               device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a checkpoint's weights (the EMA weights when present and ``ema``) into ``model``.

    The file is read with torch's weights-only loading (nothing in it runs); a file that is
    not an intact fpgen checkpoint, or whose weights do not fit ``model`` (another width or
    depth), raises :class:`CheckpointError` naming it, with ``model`` left untouched."""
    state = read_checkpoint(path, resolve_device(device))
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
    _check_fits(weights, model, describe_path(path))
    model.load_state_dict(weights)
    return model.to(resolve_device(device))


def _check_fits(weights, model: torch.nn.Module, shown: str) -> None:
    """Refuse, before any weight is copied, a checkpoint whose weights do not fit ``model``
    (torch's load_state_dict copies the tensors that fit and then raises a RuntimeError,
    leaving the model half loaded)."""
    own = model.state_dict()
    if not isinstance(weights, dict):
        raise CheckpointError(f"{shown}: its weights are a {type(weights).__name__}, not a "
                              "state dict: it is not an fpgen training checkpoint")
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    shapes = [f"{k} {tuple(weights[k].shape)} in the file, {tuple(own[k].shape)} in the model"
              for k in own if k in weights and hasattr(weights[k], "shape")
              and tuple(weights[k].shape) != tuple(own[k].shape)]
    parts = [f"{what}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
             for what, names in (("shapes differ", shapes), ("not in the file", missing),
                                 ("not in the model", extra)) if names]
    if parts:
        raise CheckpointError(
            f"{shown} holds the weights of another architecture than this "
            f"{type(model).__name__} ({'; '.join(parts)}); nothing was loaded. Build the model "
            "with the constructor arguments of the one that was trained (width, depth, ...)")


def fit(model: torch.nn.Module, loss: Callable, data: Any, *, steps: int, **kwargs) -> Trainer:
    """Build a :class:`Trainer` and run all ``steps``; returns the trainer (``.history``,
    ``.averaged()``, ``.raw_model()``, ``.save(path)``).  When it returns, ``model`` holds the
    averaged weights, so ``score_function(model, ...)`` and the other adapters use them.

    Recommended call: ``fit(model, loss, data, steps=n, lr=2e-3, seed=0)`` with the defaults —
    batch 256, Adam, a cosine learning rate decaying to 0 over the ``steps`` (no warm-up) and
    an EMA of the weights with decay 0.999 in the warm-up form (see :class:`Trainer`).  Why
    (``benchmarks/training_defaults.py``, table in docs/performance.md, "Training defaults"):
    a score model (MLP 128 x 3) on a 3-component 2-D mixture reversed with
    ``OrnsteinUhlenbeck(2)`` from T = 5, lr 2e-3, reaches energy distances of 0.96x / 1.11x
    the two-sample floor (lam = 1 / lam = 0) after 4000 steps and 0.90x / 0.96x after 12 000
    with these defaults (standard error ~0.3x), against 2.6x / 6.2x and then *worse*, 6.0x /
    4.8x, with the former defaults (constant rate, no average); the EMA started at the
    initial weights without the warm-up form gave 1.15x / 2.08x at 4000 steps.
    ``lr_schedule="constant", ema_decay=None`` restore the settings before issue 21."""
    trainer = Trainer(model, loss, data, steps=steps, **kwargs)
    trainer.train()
    return trainer
