"""Train a small CNN with each spec's exact BN arithmetic in the loop (the ``lightnorm accuracy``
command: :mod:`lightnorm.cli.accuracy`).

For every seed the same network (3 stages of conv3x3 + BN + ReLU at the input resolution, then
global average pooling and a linear classifier) is initialised once; each variant starts from
those weights and sees the batches in the same order:

* ``torch-fp32``: ``torch.nn.BatchNorm2d`` in float32, the reference;
* one variant per spec: every BN replaced by :class:`~lightnorm.train.LightNormBatchNorm2d`, so
  BN's forward, backward and running statistics are the golden model's, bit for bit. Convolutions,
  the classifier, the loss and the optimizer stay float32 PyTorch.

Reported per variant: final test accuracy (eval mode, running statistics), mean and sample
standard deviation over seeds, the difference to the reference in percentage points, the loss
and accuracy curves (a PNG) and everything in a JSON file.

Datasets (no download):

* ``digits``: scikit-learn's bundled ``load_digits`` (1797 8x8 images, 10 classes, pixel values
  0..16). Split: stratified, 20 % test, ``random_state=0`` -> 1437 train / 360 test images.
  Normalization: divide by 16, then subtract the training set's mean pixel value and divide by
  its standard deviation (two scalars, computed on the training split only).
* ``synthetic``: :func:`make_synthetic`, 8x8 oriented gratings, 10 classes 18 degrees apart,
  with random frequency and phase, per-sample contrast (log-normal, a factor of ~20 between the
  2nd and 98th percentiles), per-sample offset and linear ramp, and additive Gaussian noise;
  4000 train / 1000 test images from a fixed seed (2022). The wide per-sample dynamic range and
  the heavy-tailed activations it produces are what a range-based sigma estimate or a short
  block-floating-point mantissa can get wrong.

The batch size must give every BN layer an N*H*W within each spec's bounds; the last partial
training batch is dropped (``drop_last``), and the bound is checked before training starts.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolError, UsageError
from ..jsonsafe import json_safe
from ..spec import Spec, SpecError

REFERENCE = "torch-fp32"
DATASETS = ("digits", "synthetic")
DEFAULT_SPECS = ("fp32-baseline", "lightnorm")
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = 3
DEFAULT_BATCH = 64
DEFAULT_LR = 0.05
DEFAULT_WIDTHS = (16, 32, 64)
DEFAULT_OUT = "results/accuracy"
SYNTHETIC_SEED = 2022
#: the modules training needs besides lightnorm's own (the ``train`` extra)
TRAIN_MODULES = ("torch", "sklearn")


def require_train(what: str) -> None:
    """A :class:`ToolError` (one line, exit 2) when PyTorch or scikit-learn is missing."""
    missing = [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ToolError(f"{what} needs PyTorch and scikit-learn (not installed: "
                        f"{', '.join(missing)}): pip install 'lightnorm[train]'")


# ---- datasets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # (N, 1, H, W) float32
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    description: str

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description,
            "train": int(len(self.y_train)), "test": int(len(self.y_test)),
            "image": list(self.x_train.shape[1:]), "classes": self.classes,
        }


def load_digits_data() -> Dataset:
    """scikit-learn's bundled digits: stratified 80/20 split (random_state=0), standardized."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float64)[:, None] / 16.0
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mu, sd = x_tr.mean(), x_tr.std()
    return Dataset(
        "digits", ((x_tr - mu) / sd).astype(np.float32), y_tr,
        ((x_te - mu) / sd).astype(np.float32), y_te, 10,
        "scikit-learn load_digits, 8x8, stratified 80/20 split (random_state=0), "
        f"x/16 then standardized with the training mean {mu:.4f} and std {sd:.4f}",
    )


def make_synthetic(n_train: int = 4000, n_test: int = 1000, size: int = 8, classes: int = 10,
                   seed: int = SYNTHETIC_SEED) -> Dataset:
    """Oriented gratings with nuisance variation (deterministic for a given seed).

    Class ``c`` is the orientation ``theta = c * pi / classes`` of a sinusoidal grating
    ``sin(2 pi f (u cos theta + v sin theta) + phi)`` on a ``size`` x ``size`` grid centred at 0,
    with frequency ``f ~ U(0.12, 0.28)`` cycles/pixel and phase ``phi ~ U(0, 2 pi)``. Each sample
    then gets a contrast ``a = exp(N(0, 0.75))``, an offset ``b ~ N(0, 1)``, a linear ramp of
    slope ``N(0, 0.1)`` per pixel in a random direction, and i.i.d. noise ``N(0, 0.5^2)``:
    ``x = a * grating + b + ramp + noise``. Labels are balanced (``i mod classes``, shuffled).
    No normalization beyond the generator's own scale.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.permutation(np.arange(n) % classes)
    theta = labels * (np.pi / classes)
    freq = rng.uniform(0.12, 0.28, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    contrast = np.exp(rng.normal(0.0, 0.75, n))
    offset = rng.normal(0.0, 1.0, n)
    ramp_dir = rng.uniform(0.0, 2 * np.pi, n)
    ramp_slope = rng.normal(0.0, 0.1, n)
    c = (np.arange(size) - (size - 1) / 2.0)
    vv, uu = np.meshgrid(c, c, indexing="ij")  # v: row, u: column

    def proj(a: np.ndarray) -> np.ndarray:
        return (uu[None] * np.cos(a)[:, None, None] + vv[None] * np.sin(a)[:, None, None])

    grating = np.sin(2 * np.pi * freq[:, None, None] * proj(theta) + phase[:, None, None])
    x = (contrast[:, None, None] * grating + offset[:, None, None]
         + ramp_slope[:, None, None] * proj(ramp_dir)
         + rng.normal(0.0, 0.5, (n, size, size)))
    x = x[:, None].astype(np.float32)
    return Dataset(
        "synthetic", x[:n_train], labels[:n_train].astype(np.int64), x[n_train:],
        labels[n_train:].astype(np.int64), classes,
        f"oriented gratings {size}x{size}, {classes} orientations, log-normal contrast, "
        f"offset, ramp and noise (lightnorm.train.accuracy.make_synthetic, seed {seed})",
    )


def load_dataset(name: str) -> Dataset:
    if name == "digits":
        return load_digits_data()
    if name == "synthetic":
        return make_synthetic()
    raise UsageError(f"--dataset = {name!r}: expected one of {', '.join(DATASETS)}")


# ---- model and training ---------------------------------------------------------------------


def build_model(in_channels: int = 1, classes: int = 10,
                widths: Sequence[int] = DEFAULT_WIDTHS) -> Any:
    """Stages of conv3x3 (padding 1, no bias) + BatchNorm2d + ReLU, with a 2x2 max pool between
    stages, then global average pooling and a linear classifier. On 8x8 inputs the three BN
    layers see 8x8, 4x4 and 2x2 maps: N*H*W = 64, 16 and 4 times the batch size."""
    from torch import nn

    layers: list[Any] = []
    cin = in_channels
    for i, w in enumerate(widths):
        if i:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                   nn.ReLU(inplace=True)]
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


@dataclass
class TrainConfig:
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    momentum: float = 0.9
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    loss_scale: float = 1.0

    def info(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs, "batch_size": self.batch_size, "drop_last": True,
            "optimizer": f"SGD(lr={self.lr:g}, momentum={self.momentum:g}, "
                         f"weight_decay={self.weight_decay:g}, nesterov)",
            "lr_schedule": "cosine to 0 over all steps (per step)",
            "loss": "cross-entropy (mean over the batch)", "loss_scale": self.loss_scale,
            "model": f"{len(self.widths)} x [conv3x3 (no bias) + BN + ReLU], widths "
                     f"{list(self.widths)}, 2x2 max pool between stages, global average pool, "
                     "linear",
        }


@dataclass
class RunResult:
    variant: str
    seed: int
    train_loss: list[float] = field(default_factory=list)  # mean over each epoch's steps
    test_acc: list[float] = field(default_factory=list)  # after each epoch, eval mode
    test_loss: list[float] = field(default_factory=list)
    failure: str | None = None
    seconds: float = 0.0

    @property
    def final_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc and self.failure is None else float("nan")


def bn_channel_elems(model: Any, x: Any) -> list[int]:
    """N*H*W seen by each BatchNorm2d of ``model`` for the input batch ``x``."""
    import torch
    from torch import nn

    sizes: list[int] = []
    hooks = [m.register_forward_pre_hook(
        lambda _m, inp: sizes.append(inp[0].shape[0] * inp[0].shape[2] * inp[0].shape[3]))
        for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(x)
        model.train(was)
    finally:
        for h in hooks:
            h.remove()
    return sizes


def check_batch(specs: Sequence[Spec], model: Any, ds: Dataset, batch_size: int) -> None:
    """Every (full) training batch must give each BN layer an N*H*W the specs accept."""
    import torch

    if batch_size < 1 or batch_size > len(ds.y_train):
        raise UsageError(f"--batch-size = {batch_size}: expected 1..{len(ds.y_train)} "
                         f"(the {ds.name} training set has {len(ds.y_train)} images)")
    sizes = bn_channel_elems(model, torch.from_numpy(ds.x_train[:batch_size]))
    maps = [n // batch_size for n in sizes]  # H*W of each BN layer
    for spec in specs:
        lo, hi = spec.min_channel_elems(), spec.hw.max_channel_elems
        b_lo, b_hi = -(-lo // min(maps)), hi // max(maps)
        for i, n in enumerate(sizes):
            if not lo <= n <= hi:
                raise SpecError(f"N*H*W of BN layer {i} with --batch-size {batch_size}", n,
                                f"an integer in {lo}..{hi} for spec {spec.name!r} (a batch "
                                f"size in {b_lo}..{b_hi})")


class _Diverged(Exception):
    pass


def _evaluate(model: Any, x: Any, y: Any, batch: int = 500) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i:i + batch])
            loss_sum += float(F.cross_entropy(out, y[i:i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / len(y), loss_sum / len(y)


def train_run(variant: str, spec: Spec | None, ds: Dataset, seed: int, cfg: TrainConfig,
              init_state: dict[str, Any], orders: list[np.ndarray],
              on_epoch: Callable[[RunResult], None] | None = None) -> RunResult:
    """Train one variant from ``init_state`` with the batch order ``orders[epoch]``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from .layer import convert

    model = build_model(ds.x_train.shape[1], ds.classes, cfg.widths)
    model.load_state_dict(init_state)
    if spec is not None:
        # the hardware's eps and momentum (bn.eps, bn.momentum), not torch's defaults (1e-5,
        # 0.1: the presets' too), which convert() would carry over
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = spec.bn.eps, spec.bn.momentum
        convert(model, spec)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=True)
    steps_per_epoch = len(ds.y_train) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total)))
    xtr, ytr = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    xte, yte = torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test)
    res = RunResult(variant, seed)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.from_numpy(orders[epoch])
        losses = []
        try:
            for i in range(steps_per_epoch):
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
                if not torch.isfinite(loss):
                    raise _Diverged(f"non-finite loss at epoch {epoch + 1}, step {i + 1}")
                (loss * cfg.loss_scale if cfg.loss_scale != 1.0 else loss).backward()
                if cfg.loss_scale != 1.0:
                    for p in model.parameters():
                        if p.grad is not None:
                            p.grad.div_(cfg.loss_scale)
                opt.step()
                sched.step()
                losses.append(loss.item())
            acc, tloss = _evaluate(model, xte, yte)
        except (_Diverged, ValueError) as exc:  # golden: "x contains inf or NaN"
            res.failure = f"epoch {epoch + 1}: {exc}"
            break
        res.train_loss.append(float(np.mean(losses)))
        res.test_acc.append(acc)
        res.test_loss.append(tloss)
        res.seconds = time.perf_counter() - t0
        if on_epoch is not None:
            on_epoch(res)
    res.seconds = time.perf_counter() - t0
    return res


def set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        try:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
        except (ImportError, ValueError):  # pragma: no cover
            pass


@contextmanager
def threads_for_training(threads: int) -> Iterator[None]:
    """:func:`set_threads` for the block, then the previous thread counts again (a flow worker
    runs other specs' stages after training)."""
    import numba
    import torch

    before = (torch.get_num_threads(), numba.get_num_threads())
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def _summary(values: Sequence[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    ok = a[np.isfinite(a)]
    return {
        "mean": float(ok.mean()) if len(ok) == len(a) and len(a) else float("nan"),
        "std": float(ok.std(ddof=1)) if len(ok) == len(a) and len(a) > 1 else 0.0,
        "per_seed": [float(v) for v in a],
    }


def seed_start(ds: Dataset, cfg: TrainConfig, seed: int) -> tuple[dict[str, Any],
                                                                 list[np.ndarray]]:
    """The initial weights and the batch order of every epoch for ``seed``: the same for every
    variant, whichever process trains it (``torch.manual_seed(seed)`` then the default init;
    ``numpy.random.default_rng(seed)`` permutations)."""
    import torch

    torch.manual_seed(seed)
    init = {k: v.clone() for k, v in
            build_model(ds.x_train.shape[1], ds.classes, cfg.widths).state_dict().items()}
    rng = np.random.default_rng(seed)
    return init, [rng.permutation(len(ds.y_train)) for _ in range(cfg.epochs)]


def check_specs(specs: Sequence[Spec], ds: Dataset, cfg: TrainConfig) -> None:
    """:func:`check_batch` on the model of ``cfg``: before any training starts."""
    import torch

    torch.manual_seed(0)
    check_batch(specs, build_model(ds.x_train.shape[1], ds.classes, cfg.widths), ds,
                cfg.batch_size)


def bn_description(spec: Spec | None) -> tuple[str, str]:
    """(long, short) description of a variant's BN arithmetic."""
    if spec is None:
        return "torch.nn.BatchNorm2d float32", "torch float32"
    return (f"{spec.bn.mode} BN, x {spec.storage.x}, compute {spec.compute}, "
            f"accum {spec.accum}, scalar {spec.scalar}",
            f"{spec.bn.mode}, x {spec.storage.x}, P {spec.compute}")


def variant_summary(name: str, spec: Spec | None, runs: Sequence[RunResult],
                    ref_mean: float) -> dict[str, Any]:
    """One variant's results over its seeds (fractions; ``delta_pp`` in percentage points)."""
    acc = _summary([r.final_acc for r in runs])
    epochs_done = sum(len(r.test_acc) for r in runs)
    bn, bn_short = bn_description(spec)
    return {
        "name": name,
        "spec": None if spec is None else spec.name,
        "hash": None if spec is None else spec.hash,
        "bn": bn,
        "bn_short": bn_short,
        "test_acc": acc,
        "delta_pp": 100.0 * (acc["mean"] - ref_mean),
        "final_train_loss": _summary([r.train_loss[-1] if r.train_loss and not r.failure
                                      else float("nan") for r in runs]),
        "failures": [{"seed": r.seed, "reason": r.failure} for r in runs if r.failure],
        "seconds_per_epoch": sum(r.seconds for r in runs) / max(epochs_done, 1),
        "curves": [{"seed": r.seed, "train_loss": r.train_loss, "test_acc": r.test_acc,
                    "test_loss": r.test_loss} for r in runs],
    }


def training_info(cfg: TrainConfig, seeds: int, threads: int) -> dict[str, Any]:
    """How the variants were trained (the results' ``training`` entry)."""
    return {**cfg.info(), "seeds": list(range(seeds)), "threads": threads,
            "init": "torch.manual_seed(seed) then the default torch init; the same "
                    "weights for every variant",
            "order": "numpy default_rng(seed).permutation per epoch, the same for "
                     "every variant"}


def run_accuracy(specs: Sequence[Spec], dataset: str | Dataset = "digits",
                 cfg: TrainConfig | None = None, seeds: int = DEFAULT_SEEDS,
                 threads: int = 1, progress: bool = True,
                 console: Any = None) -> dict[str, Any]:
    """Train the reference and every spec for ``seeds`` seeds; return the results table."""
    cfg = cfg or TrainConfig()
    set_threads(threads)
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    names: list[str] = [REFERENCE]
    for sp in specs:
        name, k = sp.name, 2
        while name in names:
            name, k = f"{sp.name}#{k}", k + 1
        names.append(name)
    variants: list[tuple[str, Spec | None]] = list(zip(names, [None, *specs], strict=True))
    check_specs(specs, ds, cfg)

    runs: dict[str, list[RunResult]] = {n: [] for n in names}
    prog = None
    if progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                        console=console or Console(stderr=True))
        prog.start()
    try:
        for seed in range(seeds):
            init, orders = seed_start(ds, cfg, seed)
            for name, spec in variants:
                task = None
                if prog is not None:
                    task = prog.add_task(f"seed {seed} {name}", total=cfg.epochs, status="")

                def on_epoch(r: RunResult, task: Any = task) -> None:
                    if prog is not None:
                        prog.update(task, advance=1, status=f"loss {r.train_loss[-1]:.4f} "
                                    f"test acc {100 * r.test_acc[-1]:.2f} %")

                r = train_run(name, spec, ds, seed, cfg, init, orders, on_epoch)
                if prog is not None and task is not None and r.failure:
                    prog.update(task, status=f"FAILED {r.failure}")
                runs[name].append(r)
    finally:
        if prog is not None:
            prog.stop()

    ref_mean = _summary([r.final_acc for r in runs[REFERENCE]])["mean"]
    return {
        "dataset": ds.info(),
        "training": training_info(cfg, seeds, threads),
        "reference": REFERENCE,
        "variants": [variant_summary(name, spec, runs[name], ref_mean)
                     for name, spec in variants],
    }


# ---- one variant, for the flow's accuracy stage ------------------------------------------------


def measure(spec: Spec | None, dataset: str = "digits", cfg: TrainConfig | None = None,
            seeds: int = DEFAULT_SEEDS) -> dict[str, Any]:
    """Train one variant - ``spec``'s BN arithmetic, or ``torch.nn.BatchNorm2d`` float32 when
    ``spec`` is None - for seeds 0..K-1 on one thread, from the same initial weights and batch
    order as every other variant (:func:`seed_start`), so that variants trained in different
    processes compare seed by seed. Accuracies in percent (the flow's ``accuracy`` stage).

    Raises :class:`SpecError` when a batch gives a BN layer more or fewer elements than the
    spec accepts (before training).
    """
    cfg = cfg or TrainConfig()
    ds = load_dataset(dataset)
    if spec is not None:
        check_specs([spec], ds, cfg)
    with threads_for_training(1):
        t0 = time.perf_counter()
        runs = [train_run(REFERENCE if spec is None else spec.name, spec, ds, seed, cfg,
                          *seed_start(ds, cfg, seed)) for seed in range(seeds)]
        seconds = time.perf_counter() - t0
    v = variant_summary(REFERENCE if spec is None else spec.name, spec, runs, math.nan)
    pct = {k: 100.0 * v["test_acc"][k] for k in ("mean", "std")}  # NaN (a failed seed): null
    return json_safe({
        "variant": v["name"], "bn": v["bn"], "dataset": ds.info(),
        "training": training_info(cfg, seeds, 1),
        "accuracy_pct": {**pct, "per_seed": [100.0 * a for a in v["test_acc"]["per_seed"]]},
        "final_train_loss": v["final_train_loss"],
        "failures": v["failures"],
        "seconds": seconds, "seconds_per_epoch": v["seconds_per_epoch"],
        "curves": [{"seed": c["seed"], "train_loss": c["train_loss"],
                    "test_acc_pct": [100.0 * a for a in c["test_acc"]],
                    "test_loss": c["test_loss"]} for c in v["curves"]],
    })


# ---- output -----------------------------------------------------------------------------------


def plot_curves(result: dict[str, Any], path: Path) -> None:
    """Training loss and test accuracy per epoch: mean over seeds, band = min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for v in result["variants"]:
        curves = [c for c in v["curves"] if c["train_loss"]]
        if not curves:
            continue
        n = min(len(c["train_loss"]) for c in curves)
        ep = np.arange(1, n + 1)
        for ax, key, scale in ((ax1, "train_loss", 1.0), (ax2, "test_acc", 100.0)):
            a = np.array([c[key][:n] for c in curves]) * scale
            (line,) = ax.plot(ep, a.mean(0), label=v["name"])
            ax.fill_between(ep, a.min(0), a.max(0), color=line.get_color(), alpha=0.2)
    ds, tr = result["dataset"], result["training"]
    ax1.set(xlabel="epoch", ylabel="training loss (mean over the epoch)", yscale="log",
            title=f"{ds['name']}: training loss")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{ds['name']}: test accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"mean of {len(tr['seeds'])} seeds (band: min..max)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"accuracy-{result['dataset']['name']}"
    files = {"json": str(out / f"{stem}.json"), "plot": str(out / f"{stem}.png")}
    result["files"] = files
    plot_curves(result, Path(files["plot"]))
    Path(files["json"]).write_text(json.dumps(json_safe(result), indent=2) + "\n", "utf-8")
    return files


def results_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    ds, tr = result["dataset"], result["training"]
    table = Table(title=f"{ds['name']}: test accuracy after {tr['epochs']} epochs, mean ± std "
                        f"of {len(tr['seeds'])} seeds")
    table.add_column("variant", style="bold", no_wrap=True)
    table.add_column("test acc %", justify="right", no_wrap=True)
    table.add_column("Δ pp", justify="right", no_wrap=True)
    table.add_column("train loss", justify="right", no_wrap=True)
    table.add_column("s/epoch", justify="right", no_wrap=True)
    for v in result["variants"]:
        a = v["test_acc"]
        acc = ("failed" if not math.isfinite(a["mean"])
               else f"{100 * a['mean']:.2f} ± {100 * a['std']:.2f}")
        d = "ref" if v["name"] == result["reference"] else (
            f"{v['delta_pp']:+.2f}" if math.isfinite(v["delta_pp"]) else "n/a")
        tl = v["final_train_loss"]["mean"]
        table.add_row(v["name"], acc, d, f"{tl:.4f}" if math.isfinite(tl) else "n/a",
                      f"{v['seconds_per_epoch']:.2f}")
    table.caption = (f"Δ pp: difference of the mean to {result['reference']} "
                     "(torch.nn.BatchNorm2d, float32), percentage points")
    return table
