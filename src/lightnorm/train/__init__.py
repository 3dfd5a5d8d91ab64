"""Training with the hardware's exact BN arithmetic in the loop (needs ``lightnorm[train]``).

:class:`LightNormBatchNorm2d` is a drop-in for :class:`torch.nn.BatchNorm2d` whose training
forward and backward are the golden model's (:mod:`lightnorm.verify.golden`), bit for bit, and
whose eval mode follows docs/numerics.md section 8; :func:`convert` swaps it into a model.
:mod:`lightnorm.train.accuracy` trains a small CNN per spec and compares with FP32 BN
(``lightnorm accuracy``); :mod:`lightnorm.bench.train` times a training step.

torch is an optional dependency: importing :mod:`lightnorm` or this package does not import it;
the names below are loaded from :mod:`lightnorm.train.layer` on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LightNormBatchNorm2d", "convert", "eval_forward", "exact_dtype"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import layer

        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
