"""Tests of lightnorm.train: the BN layer with the golden model in the loop, convert, eval mode,
a short training run and the ``accuracy`` command."""

from __future__ import annotations

import contextlib
import copy
import json
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

# PyTorch and scikit-learn are optional (lightnorm[train]): these tests run in tox's torch
# environment (pytest -m torch) and are skipped where torch is not installed
pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lightnorm.spec import SpecError, load, preset_names  # noqa: E402
from lightnorm.spec.rounding import round_exact, sqrt_exact  # noqa: E402
from lightnorm.train import LightNormBatchNorm2d, convert, exact_dtype  # noqa: E402
from lightnorm.verify import golden  # noqa: E402
from lightnorm.verify.encoding import encode, from_stream, to_stream  # noqa: E402

PRESETS = preset_names()
#: presets whose values float32 cannot hold: E5M2 elements at the largest E8M0 scale reach
#: 57344 x 2^127, past float32's largest finite value
FLOAT64_PRESETS = {"lightnorm-mxfp8"}


def _warns_float32(name: str, dtype: torch.dtype) -> Any:
    """The layer warns when float32 inputs cannot carry the spec's values exactly."""
    if dtype == torch.float32 and name in FLOAT64_PRESETS:
        return pytest.warns(UserWarning, match="float64")
    return contextlib.nullcontext()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _data(shape: tuple[int, int, int, int], seed: int, dtype: torch.dtype = torch.float32
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = np.random.default_rng(seed)
    c = shape[1]
    x = g.uniform(-2, 2, (1, c, 1, 1)) + np.exp(g.uniform(-1, 1, (1, c, 1, 1))) \
        * g.standard_normal(shape)
    dy = 1e-2 * g.standard_normal(shape)
    gamma = g.uniform(0.5, 1.5, c) * g.choice([-1.0, 1.0], c)
    beta = g.uniform(-0.5, 0.5, c)
    return tuple(torch.tensor(a, dtype=dtype) for a in (x, dy, gamma, beta))  # type: ignore[return-value]


def _layer(spec: object, gamma: torch.Tensor, beta: torch.Tensor, **kw: object
           ) -> LightNormBatchNorm2d:
    bn = LightNormBatchNorm2d(spec, gamma.numel(), dtype=gamma.dtype, **kw)  # type: ignore[arg-type]
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    return bn


def _same(a: torch.Tensor, b: np.ndarray) -> None:
    got = a.detach().to(torch.float64).numpy()
    assert got.shape == b.shape
    assert np.array_equal(got, b), f"max |diff| {np.max(np.abs(got - b))}"


# ---- bit-exact against the golden model -------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", PRESETS)
def test_layer_matches_golden_bit_for_bit(name: str, dtype: torch.dtype) -> None:
    spec = load(name)
    shape = (6, 3, 5, 7)  # n = 210, not a multiple of the lanes or the blocks
    x, dy, gamma, beta = _data(shape, seed=len(name), dtype=dtype)
    bn = _layer(spec, gamma, beta)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_disp.uniform_(0.5, 2)
    rm0, rd0 = bn.running_mean.double().numpy().copy(), bn.running_disp.double().numpy().copy()
    xr = x.clone().requires_grad_(True)
    with _warns_float32(name, dtype):
        y = bn(xr)
    y.backward(dy)

    x64, g64, b64 = (t.double().numpy() for t in (x, gamma, beta))
    fr = golden.forward(spec, x64, g64, b64, running_mean=rm0, running_disp=rd0)
    br = golden.backward(spec, x64, dy.double().numpy(), g64, b64)
    assert y.dtype == dtype and xr.grad.dtype == dtype
    _same(y, fr.y)
    _same(xr.grad, br.dx)
    _same(bn.weight.grad, br.dgamma)
    _same(bn.bias.grad, br.dbeta)
    _same(bn.running_mean, fr.running_mean)
    disp = fr.running_var if spec.bn.mode == "standard" else fr.running_sigma
    _same(bn.running_disp, disp)
    assert bn.running_name == ("running_var" if spec.bn.mode == "standard" else "running_sigma")
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("name", PRESETS)
def test_float32_carries_the_golden_values(name: str) -> None:
    spec = load(name)
    if name in FLOAT64_PRESETS:
        assert exact_dtype(spec) == torch.float64
        assert spec.storage.dy.max_value > float(np.finfo(np.float32).max)
        return
    assert exact_dtype(spec) == torch.float32
    x, dy, gamma, beta = _data((4, 2, 8, 8), seed=3)
    x = x * 1e-30  # tiny values: BFP quanta below float32's smallest normal
    fr = golden.forward(spec, x.double().numpy(), gamma.double().numpy(), beta.double().numpy())
    assert np.array_equal(fr.y.astype(np.float32).astype(np.float64), fr.y)


def test_wide_formats_need_float64() -> None:
    table = load("fp32-baseline").to_dict()
    table["scalar"] = {**table["scalar"], "exp_bits": 11}
    from lightnorm.spec import from_dict

    spec = from_dict(table)
    assert exact_dtype(spec) == torch.float64
    bn = LightNormBatchNorm2d(spec, 2)
    with pytest.warns(UserWarning, match="float64"):
        bn(torch.randn(4, 2, 3, 3))


def test_affine_false_and_no_running_stats() -> None:
    spec = load("lightnorm")
    x, dy, _, _ = _data((4, 2, 8, 8), seed=5)
    bn = LightNormBatchNorm2d(spec, 2, affine=False, track_running_stats=False).eval()
    xr = x.clone().requires_grad_(True)
    y = bn(xr)  # no running statistics: batch statistics even in eval mode
    y.backward(dy)
    fr = golden.forward(spec, x.double().numpy())
    br = golden.backward(spec, x.double().numpy(), dy.double().numpy())
    _same(y, fr.y)
    _same(xr.grad, br.dx)
    assert bn.weight is None and bn.running_mean is None


# ---- fp32-baseline against torch.nn.BatchNorm2d -------------------------------------------------


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> None:
    a64, b64 = a.detach().double(), b.detach().double()
    scale = float(b64.abs().max())
    torch.testing.assert_close(a64, b64, rtol=rtol, atol=rtol * scale)


def test_fp32_baseline_matches_torch_batchnorm() -> None:
    x, dy, gamma, beta = _data((16, 4, 6, 6), seed=11)
    ref = nn.BatchNorm2d(4)
    with torch.no_grad():
        ref.weight.copy_(gamma)
        ref.bias.copy_(beta)
    ours = convert(copy.deepcopy(ref), "fp32-baseline")
    assert isinstance(ours, LightNormBatchNorm2d)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    ys = [m(xi) for m, xi in ((ref, xs[0]), (ours, xs[1]))]
    for yi in ys:
        yi.backward(dy)
    _close(ys[1], ys[0])
    _close(xs[1].grad, xs[0].grad)
    _close(ours.weight.grad, ref.weight.grad)
    _close(ours.bias.grad, ref.bias.grad)
    _close(ours.running_mean, ref.running_mean)
    _close(ours.running_var, ref.running_var)
    ref.eval()
    ours.eval()
    _close(ours(x), ref(x))


# ---- autograd, convert, eval mode ----------------------------------------------------------------


def test_gradients_flow_to_the_conv_before() -> None:
    torch.manual_seed(0)
    spec = load("lightnorm")
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    bn = LightNormBatchNorm2d(spec, 4)
    x = torch.randn(8, 2, 6, 6)  # n = 288
    r = 1e-2 * torch.randn(8, 4, 6, 6)
    h = conv(x)
    (bn(h) * r).sum().backward()  # dL/dy = r
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    # the conv's gradient is torch's conv backward of the golden model's dx
    br = golden.backward(spec, h.detach().double().numpy(), r.double().numpy())
    want = torch.nn.grad.conv2d_weight(x, conv.weight.shape, torch.from_numpy(br.dx).float(),
                                       padding=1)
    torch.testing.assert_close(conv.weight.grad, want, rtol=1e-5, atol=1e-8)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)
        self.bn = nn.BatchNorm2d(5)
        self.inner = nn.Sequential(nn.Conv2d(5, 5, 1), nn.BatchNorm2d(5, momentum=0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.bn(self.conv(x)))


@pytest.mark.parametrize("name", ["fp32-baseline", "lightnorm"])
def test_convert_replaces_every_batchnorm(name: str) -> None:
    model = nn.Sequential(nn.BatchNorm2d(3), _Block(), nn.Sequential(nn.BatchNorm2d(5)))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for i, m in enumerate(bns):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-1, 1)
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 4)
            m.num_batches_tracked.fill_(7 + i)
    model[1].eval()
    convert(model, name)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    new = [m for m in model.modules() if isinstance(m, LightNormBatchNorm2d)]
    assert len(new) == len(bns) == 4
    for old, m in zip(bns, new, strict=True):
        assert torch.equal(m.weight, old.weight) and torch.equal(m.bias, old.bias)
        assert torch.equal(m.running_mean, old.running_mean)
        want = old.running_var if m.spec.bn.mode == "standard" else old.running_var.sqrt()
        assert torch.equal(m.running_disp, want)
        assert int(m.num_batches_tracked) == int(old.num_batches_tracked)
        assert m.training == old.training
        assert m.momentum == old.momentum and m.spec.storage == load(name).storage
    assert new[2].momentum == 0.2  # a copy of the spec with the BN's momentum
    model(torch.randn(4, 3, 8, 8))  # runs


def _hand_eval(spec: object, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
               rm: torch.Tensor, rd: torch.Tensor) -> np.ndarray:
    """numerics.md section 8, eval mode, on exact rationals (spec.rounding), per element."""
    s, p = spec.scalar, spec.compute  # type: ignore[attr-defined]

    def host(v: float) -> Fraction:
        return round_exact(Fraction(float(v)), s, "nearest")

    eps = host(spec.bn.eps)  # type: ignore[attr-defined]
    xs = encode(to_stream(x.double().numpy()), spec.storage.x).vals  # type: ignore[attr-defined]
    lanes = np.empty_like(xs)
    for c in range(xs.shape[0]):
        den = round_exact(host(rd[c]) + eps, s)
        if spec.bn.mode == "standard":  # type: ignore[attr-defined]
            den = sqrt_exact(den, s)
        inv = round_exact(1 / den, s)
        scale = round_exact(host(gamma[c]) * inv, s)
        shift = round_exact(host(beta[c]) - round_exact(host(rm[c]) * scale, s), s)
        sc_p, sh_p = round_exact(scale, p), round_exact(shift, p)
        for i, xv in enumerate(xs[c]):
            t = round_exact(round_exact(Fraction(float(xv)), p) * sc_p, p)
            lanes[c, i] = float(round_exact(t + sh_p, p))
    y = encode(lanes, spec.storage.y).vals  # type: ignore[attr-defined]
    return from_stream(y, tuple(x.shape))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PRESETS)
def test_eval_mode_uses_running_stats(name: str) -> None:
    spec = load(name)
    x, _, gamma, beta = _data((3, 2, 4, 4), seed=7)  # H*W = 16: BFP blocks inside one sample
    bn = _layer(spec, gamma, beta)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.3, -1.2]))
        bn.running_disp.copy_(torch.tensor([0.7, 2.5]))
    bn.eval()
    with _warns_float32(name, x.dtype):
        y = bn(x)
    want = _hand_eval(spec, x, gamma, beta, bn.running_mean, bn.running_disp)
    _same(y, want)
    # no batch statistics: one sample alone gives its row of the batch's output
    _same(bn(x[1:2]), want[1:2])  # (the layer warns once)
    assert int(bn.num_batches_tracked) == 0
    # the gradient (straight-through, ideal eval BN) still reaches the input
    xr = x.clone().requires_grad_(True)
    bn(xr).sum().backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0


def test_channel_bounds_are_checked() -> None:
    spec = load("lightnorm")  # range BN, 8 chunks of 16 lanes: n >= 113
    bn = LightNormBatchNorm2d(spec, 2)
    with pytest.raises(SpecError, match="drop_last"):
        bn(torch.randn(1, 2, 8, 8))  # n = 64
    bn.eval()
    bn(torch.randn(1, 2, 8, 8))  # eval mode has no reduction and no bound


# ---- training -------------------------------------------------------------------------------


def test_short_training_run_on_digits_lowers_the_loss() -> None:
    from lightnorm.train.accuracy import build_model, load_digits_data

    ds = load_digits_data()
    torch.manual_seed(0)
    model = convert(build_model(), "lightnorm")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    losses = []
    for step in range(20):
        idx = order[step * 64:(step + 1) * 64]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_accuracy_command_writes_json_and_plot(tmp_path: object, capsys: object) -> None:
    from lightnorm.cli import main

    assert main(["accuracy", "fp32-baseline", "--epochs", "1", "--seeds", "1",
                 "-o", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    names = [v["name"] for v in out["variants"]]
    assert names == ["torch-fp32", "fp32-baseline"]
    for v in out["variants"]:
        assert 0.0 <= v["test_acc"]["mean"] <= 1.0 and len(v["curves"][0]["train_loss"]) == 1
    # same initial weights and data order: identical first-epoch behaviour up to BN rounding
    a, b = (v["curves"][0]["train_loss"][0] for v in out["variants"])
    assert abs(a - b) < 0.05 * a
    stored = json.loads((tmp_path / "accuracy-digits.json").read_text())  # type: ignore[operator]
    assert stored["variants"][1]["name"] == "fp32-baseline"
    assert (tmp_path / "accuracy-digits.png").stat().st_size > 0  # type: ignore[operator]


def test_batch_size_too_small_for_the_spec_is_refused(tmp_path: object) -> None:
    from lightnorm.train.accuracy import TrainConfig, run_accuracy

    with pytest.raises(SpecError, match="batch-size 1"):
        run_accuracy([load("lightnorm")], "digits", TrainConfig(epochs=1, batch_size=1),
                     seeds=1, progress=False)
