"""A drop-in ``torch.nn.BatchNorm2d`` that computes exactly what the BN hardware computes.

Training mode (and eval mode with ``track_running_stats=False``) runs the golden model
(:func:`lightnorm.verify.golden.forward` / :func:`~lightnorm.verify.golden.backward`) through a
``torch.autograd.Function``: the output, the gradients dx, dgamma, dbeta and the updated running
statistics are the golden model's values, bit for bit. Eval mode follows docs/numerics.md
section 8 (:func:`eval_forward`).

Precision of the tensors that carry the exact values: the golden model works in float64 NumPy
on the CPU; its results (y, dx in the storage formats; dgamma, dbeta and the running statistics
in the scalar format) are converted to the dtype of the input (y, dx) or of the parameter and
buffer (dgamma, dbeta, running statistics). float32 holds every one of them exactly when each
storage format and the scalar format fit in float32: at most 24 significand bits, largest
exponent <= 127, lowest bit >= 2^-149 (float32 subnormals are used for the smallest BFP values,
so do not enable ``torch.set_flush_denormal``). All presets fit (:func:`exact_dtype` returns
``torch.float32`` for them). A spec with wider formats (exponents of 9..11 bits) needs float64
inputs and parameters; the layer warns once when the dtype it is given cannot carry the values.

torch is imported here: this module is only loaded by ``lightnorm.train`` on first use.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..spec import FPFormat, Spec, SpecError, from_dict, load
from ..spec.formats import StorageFormat
from ..spec.rounding import round_scalar
from ..verify import fpnum, golden
from ..verify.encoding import Encoded, encode, from_stream, to_stream

__all__ = ["LightNormBatchNorm2d", "convert", "eval_forward", "exact_dtype"]


# ---- which torch dtype carries the exact values --------------------------------------------


def _fits_float32(fmt: StorageFormat | FPFormat) -> bool:
    """float32 holds every value of ``fmt``: its significant bits, its largest exponent and
    the finest step of its grid."""
    return fmt.precision <= 24 and fmt.emax <= 127 and fmt.lsb_exp >= -149


def exact_dtype(spec: Spec) -> torch.dtype:
    """``torch.float32`` if float32 holds every value the layer returns, else ``float64``."""
    fmts: list[StorageFormat | FPFormat] = [*spec.storage.roles().values(), spec.scalar]
    return torch.float32 if all(_fits_float32(f) for f in fmts) else torch.float64


def _carries(dtype: torch.dtype, spec: Spec) -> bool:
    return dtype == torch.float64 or (dtype == torch.float32 and exact_dtype(spec) == dtype)


# ---- eval mode (docs/numerics.md section 8) -------------------------------------------------


def _host_vector(a: Any, c: int, spec: Spec) -> np.ndarray:
    """Per-channel values given by the host, rounded into S with nearest (section 7/8)."""
    arr = np.broadcast_to(np.asarray(a, dtype=np.float64), (c,)).copy()
    return fpnum.round_array(arr, spec.scalar, "nearest")


def eval_scale_shift(spec: Spec, gamma: Any, beta: Any, running_mean: Any,
                     running_disp: Any, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``scale`` and ``shift`` (values of S) of eval mode.

    ``mu = running_mean``; standard BN: ``den = sqrt_S(add_S(running_var, eps_s))``; range BN:
    ``den = add_S(running_sigma, eps_s)``; ``inv_sigma = recip_S(den)``,
    ``scale = mul_S(gamma, inv_sigma)``, ``shift = sub_S(beta, mul_S(mu, scale))``.
    """
    s = spec.scalar
    g, b = _host_vector(gamma, c, spec), _host_vector(beta, c, spec)
    mu, rd = _host_vector(running_mean, c, spec), _host_vector(running_disp, c, spec)
    eps_s = np.full(c, round_scalar(spec.bn.eps, s, "nearest"))
    den = fpnum.op_array("add", rd, eps_s, s)
    if spec.bn.mode == "standard":
        den = fpnum.op_array("sqrt", den, None, s)
    inv_sigma = fpnum.op_array("recip", den, None, s)
    scale = fpnum.op_array("mul", g, inv_sigma, s)
    shift = fpnum.op_array("sub", b, fpnum.op_array("mul", mu, scale, s), s)
    return scale, shift


def eval_forward(spec: Spec, x: np.ndarray, gamma: Any = 1.0, beta: Any = 0.0,
                 running_mean: Any = 0.0, running_disp: Any = 1.0) -> np.ndarray:
    """Eval-mode BN of an NCHW array as the hardware computes it (float64 result).

    x is stored in ``storage.x``; per element ``y = add_P(mul_P(cvt_P(x), cvt_P(scale)),
    cvt_P(shift))`` (the normalize pass of training), encoded to ``storage.y``. There is no
    reduction, so no bound on N*H*W. ``running_disp`` is the running variance (standard BN) or
    running sigma (range BN).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"x must be an NCHW array, got shape {x.shape}")
    c = x.shape[1]
    scale, shift = eval_scale_shift(spec, gamma, beta, running_mean, running_disp, c)
    p = spec.compute
    xs = encode(to_stream(x), spec.storage.x).vals  # (C, n), values of storage.x

    def lanes(v: np.ndarray) -> np.ndarray:  # cvt_P of a per-channel value, on every lane
        return np.repeat(fpnum.round_array(v, p)[:, None], xs.shape[1], axis=1)

    t = fpnum.op_array("mul", fpnum.round_array(xs, p), lanes(scale), p)
    y = fpnum.op_array("add", t, lanes(shift), p)
    n_, _, h, w = x.shape
    return from_stream(encode(y, spec.storage.y).vals, (n_, c, h, w))


# ---- training mode: the golden model as an autograd Function --------------------------------


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _np_or(t: torch.Tensor | None, default: float) -> np.ndarray | float:
    return default if t is None else _np(t)


def _like(a: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(a).to(device=t.device, dtype=t.dtype)


def _host(t: torch.Tensor) -> np.ndarray:
    """A tensor as the golden model reads it: float32 CPU tensors as they are (it reads them
    exactly, without a float64 copy), anything else as float64."""
    if t.dtype == torch.float32 and t.device.type == "cpu":
        return t.detach().contiguous().numpy()
    return _np(t)


def _out_for(t: torch.Tensor) -> np.ndarray | None:
    """A float32 array for the golden model to write values like t into, where t is a float32
    CPU tensor (None: decoded afterwards, :func:`_tensor_like`)."""
    if t.dtype == torch.float32 and t.device.type == "cpu":
        return np.empty(tuple(t.shape), np.float32)
    return None


def _tensor_like(out: np.ndarray | None, enc: Encoded, shape: tuple[int, int, int, int],
                 t: torch.Tensor) -> torch.Tensor:
    """An encoded tensor's values as an NCHW tensor like ``t``: ``out`` if the golden model
    wrote them there, else decoded from the patterns."""
    if out is not None:
        return torch.from_numpy(out)
    dt = np.float32 if t.dtype == torch.float32 else np.float64
    return torch.from_numpy(enc.nchw(shape, dt)).to(device=t.device, dtype=t.dtype)


class _GoldenBatchNorm(torch.autograd.Function):
    """y = golden.forward(x); (dx, dgamma, dbeta) = golden.backward(x, dy)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor,  # type: ignore[override]
                weight: torch.Tensor | None, bias: torch.Tensor | None, spec: Spec,
                running_mean: np.ndarray | None, running_disp: np.ndarray | None,
                out: list[golden.ForwardResult]) -> torch.Tensor:
        y_out = _out_for(x)
        fr = golden.forward(spec, _host(x), _np_or(weight, 1.0), _np_or(bias, 0.0),
                            running_mean=running_mean, running_disp=running_disp, y_out=y_out)
        out.append(fr)
        ctx.save_for_backward(x, weight, bias)
        ctx.spec = spec
        ctx.fr = fr
        return _tensor_like(y_out, fr.y_enc, fr.shape, x)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, weight, bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx_out = _out_for(x) if need[0] else None
        # x is not read again: the forward result holds its statistics
        br = golden.backward(ctx.spec, None, _host(dy), _np_or(weight, 1.0), _np_or(bias, 0.0),
                             saved=ctx.fr, dx_out=dx_out)
        ctx.fr = None
        dx = _tensor_like(dx_out, br.dx_enc, br.shape, x) if need[0] else None
        dg = _like(br.dgamma, weight) if weight is not None and need[1] else None
        db = _like(br.dbeta, bias) if bias is not None and need[2] else None
        return dx, dg, db, None, None, None, None


def _spec_with(spec: Spec, eps: float | None, momentum: float | None) -> Spec:
    """The spec, or a validated copy with other ``bn.eps`` / ``bn.momentum``."""
    changes = {}
    if eps is not None and float(eps) != spec.bn.eps:
        changes["eps"] = float(eps)
    if momentum is not None and float(momentum) != spec.bn.momentum:
        changes["momentum"] = float(momentum)
    if not changes:
        return spec
    table = spec.to_dict()
    table["bn"] = {**table["bn"], **changes}
    return from_dict(table)


class LightNormBatchNorm2d(nn.Module):
    """``torch.nn.BatchNorm2d`` with the BN hardware of ``spec`` doing the arithmetic.

    Same parameters (``weight``, ``bias``) and buffers (``running_mean``,
    ``num_batches_tracked``) as ``BatchNorm2d``; the dispersion buffer is ``running_var`` for
    standard BN and ``running_sigma`` (the range estimate of sigma, docs/numerics.md section 8)
    for range BN (:attr:`running_name`; :attr:`running_disp` is either). ``eps`` and
    ``momentum`` default to the spec's ``bn.eps`` / ``bn.momentum``; other values make a
    validated copy of the spec with them. ``momentum=None`` (cumulative average) has no
    hardware counterpart and is refused by :func:`convert`.

    Training (or no running statistics): forward, backward and the running-statistics update
    are the golden model's, bit for bit; N*H*W must lie in the spec's channel-size bounds
    (``SpecError`` otherwise). Eval: :func:`eval_forward` on the running statistics; its
    gradient, if one is asked for, is the float64 ideal one of ``y = scale*x + shift`` (the
    hardware has no eval backward). See the module docstring for the dtype that carries the
    values exactly (float32 for every preset). CPU arithmetic: tensors on another device are
    copied to the host and back.
    """

    weight: nn.Parameter | None
    bias: nn.Parameter | None
    running_mean: torch.Tensor | None
    num_batches_tracked: torch.Tensor | None

    def __init__(self, spec: Spec | str, num_features: int, eps: float | None = None,
                 momentum: float | None = None, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None
                 ) -> None:
        super().__init__()
        base = load(spec) if isinstance(spec, str) else spec
        self.spec = _spec_with(base, eps, momentum)
        self.num_features = int(num_features)
        self.eps = self.spec.bn.eps
        self.momentum = self.spec.bn.momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.running_name = "running_var" if self.spec.bn.mode == "standard" else "running_sigma"
        factory = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(self.num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(self.num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features, **factory))
            self.register_buffer(self.running_name, torch.ones(self.num_features, **factory))
            self.register_buffer("num_batches_tracked",
                                 torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer(self.running_name, None)
            self.register_buffer("num_batches_tracked", None)
        self._warned_dtype = False

    # --- BatchNorm2d API ---------------------------------------------------------------------
    @property
    def running_disp(self) -> torch.Tensor | None:
        """The dispersion buffer: ``running_var`` (standard) or ``running_sigma`` (range)."""
        return self._buffers[self.running_name]

    def _running(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rm, rd, nbt = self.running_mean, self.running_disp, self.num_batches_tracked
        if rm is None or rd is None or nbt is None:
            raise RuntimeError("this layer keeps no running statistics")
        return rm, rd, nbt

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            rm, rd, nbt = self._running()
            rm.zero_()
            rd.fill_(1)
            nbt.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None and self.bias is not None:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f"{self.spec.name!r}, {self.num_features}, mode={self.spec.bn.mode}, "
                f"eps={self.eps:g}, momentum={self.momentum:g}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    # --- forward -----------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a 4D (NCHW) input, got {x.dim()}D")
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels, got {x.shape[1]}")
        if not self._warned_dtype and not _carries(x.dtype, self.spec):
            self._warned_dtype = True
            warnings.warn(
                f"{x.dtype} cannot hold every value of spec {self.spec.name!r} exactly; use "
                f"{exact_dtype(self.spec)} inputs for bit-exact results", stacklevel=3)

    def _check_channel_elems(self, n: int) -> None:
        lo, hi = self.spec.min_channel_elems(), self.spec.hw.max_channel_elems
        if not lo <= n <= hi:
            raise SpecError(
                f"N*H*W (elements per channel) of {type(self).__name__}({self.num_features})",
                n, f"an integer in {lo}..{hi} for spec {self.spec.name!r} (choose the batch "
                "size so that every batch, the last one too, fits: e.g. drop_last=True)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if not (self.training or not self.track_running_stats):
            return self._eval(x)
        n_, _, h, w = x.shape
        self._check_channel_elems(n_ * h * w)
        update = self.training and self.track_running_stats
        out: list[golden.ForwardResult] = []
        if update:
            rm, rd, nbt = self._running()
            y = _GoldenBatchNorm.apply(x, self.weight, self.bias, self.spec, _np(rm), _np(rd),
                                       out)
            fr = out[0]
            disp = fr.running_var if self.spec.bn.mode == "standard" else fr.running_sigma
            assert disp is not None
            with torch.no_grad():
                rm.copy_(torch.from_numpy(fr.running_mean))
                rd.copy_(torch.from_numpy(disp))
                nbt.add_(1)
        else:
            y = _GoldenBatchNorm.apply(x, self.weight, self.bias, self.spec, None, None, out)
        return cast(torch.Tensor, y)

    def _eval(self, x: torch.Tensor) -> torch.Tensor:
        rm, rd, _ = self._running()
        y = _like(eval_forward(self.spec, _np(x), _np_or(self.weight, 1.0),
                               _np_or(self.bias, 0.0), _np(rm), _np(rd)), x)
        weight_grad = self.weight is not None and self.weight.requires_grad
        if not (torch.is_grad_enabled() and (x.requires_grad or weight_grad)):
            return y
        # Straight-through: the value is the hardware's, the gradient the ideal eval BN's.
        shape = (1, -1, 1, 1)
        rm64, rd64 = rm.to(torch.float64).view(shape), rd.to(torch.float64).view(shape)
        den = (rd64 + self.eps).sqrt() if self.spec.bn.mode == "standard" else rd64 + self.eps
        ideal = (x.to(torch.float64) - rm64) / den
        if self.weight is not None and self.bias is not None:
            ideal = (ideal * self.weight.to(torch.float64).view(shape)
                     + self.bias.to(torch.float64).view(shape))
        return y + (ideal - ideal.detach()).to(x.dtype)


# ---- model conversion -----------------------------------------------------------------------


def _from_batchnorm(bn: nn.BatchNorm2d, spec: Spec) -> LightNormBatchNorm2d:
    if bn.momentum is None:
        raise ValueError("BatchNorm2d(momentum=None) (a cumulative average) has no hardware "
                         "counterpart: give it a momentum before converting")
    ref = bn.weight if bn.weight is not None else bn.running_mean
    new = LightNormBatchNorm2d(
        spec, bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        device=None if ref is None else ref.device, dtype=None if ref is None else ref.dtype)
    with torch.no_grad():
        if new.weight is not None and new.bias is not None:
            new.weight.copy_(bn.weight)
            new.bias.copy_(bn.bias)
        if new.track_running_stats and bn.running_mean is not None and \
                bn.running_var is not None and bn.num_batches_tracked is not None:
            rm, rd, nbt = new._running()
            rm.copy_(bn.running_mean)
            rv = bn.running_var
            # range BN keeps sigma, not the variance
            rd.copy_(rv if new.running_name == "running_var" else rv.clamp_min(0).sqrt())
            nbt.copy_(bn.num_batches_tracked)
    new.train(bn.training)
    return new


def convert(model: nn.Module, spec: Spec | str) -> nn.Module:
    """Replace every ``torch.nn.BatchNorm2d`` in ``model`` (recursively, in place) by a
    :class:`LightNormBatchNorm2d` of ``spec`` with the same weights, running statistics
    (range BN: ``running_sigma = sqrt(running_var)``), ``eps``, ``momentum`` and training flag.
    Returns ``model`` (a bare ``BatchNorm2d`` is returned converted)."""
    sp = load(spec) if isinstance(spec, str) else spec
    if isinstance(model, nn.BatchNorm2d):
        return _from_batchnorm(model, sp)
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, _from_batchnorm(child, sp))
        else:
            convert(child, sp)
    return model
