"""``lightnorm quantize FORMAT_TOML --in x.npy --out q.npy [--json]``: a float array through
one storage format (:func:`lightnorm.verify.quantize.quantize`), blocked along its last axis.

FORMAT_TOML holds one storage-format table at its top level, as a ``[storage.*]`` section of
a spec does (``kind = "mx"``, ``element = "fp8_e4m3"``, ``block = 32``). Registered in
:data:`lightnorm.cli.core.COMMANDS` with ``takes_spec=False``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from lightnorm.cli import args as cliargs
from lightnorm.errors import UsageError

QUANTIZE_HELP = ("quantize a float array (.npy) through one storage format (a TOML table such "
                 "as a [storage.x] section) and write the decoded values (.npy)")


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", metavar="FORMAT_TOML", type=cliargs.in_file_arg("FORMAT_TOML"),
                        help="TOML file with one storage-format table (kind = ..., ...)")
    parser.add_argument("--in", dest="inp", required=True, metavar="X_NPY",
                        type=cliargs.in_file_arg("--in"),
                        help="input array (.npy, real numbers); blocks run along its last axis")
    parser.add_argument("--out", required=True, metavar="Q_NPY",
                        type=cliargs.out_file_arg("--out"),
                        help="where to write the decoded float64 values (.npy)")


def _read_format(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a TOML text file ({exc.reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None


def _read_array(path: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise UsageError(f"{path}: not a NumPy .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise UsageError(f"{path}: expected an array of real numbers")
    return arr


def cmd_quantize(args: argparse.Namespace) -> int:
    from lightnorm.verify.quantize import quantize, storage_format

    fmt = storage_format(_read_format(args.format), Path(args.format).name)
    x = _read_array(args.inp)
    try:
        q = quantize(fmt, x)
    except ValueError as exc:
        raise UsageError(f"{args.inp}: {exc}") from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, q)
    tmp.replace(out)
    if args.json:
        err = np.abs(q - x.astype(np.float64))
        json.dump({"format": str(fmt), "kind": fmt.kind, "shape": list(q.shape),
                   "bits_per_element": fmt.bits_per_element, "out": str(out),
                   "max_abs_error": float(err.max()) if err.size else 0.0}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{fmt}: {q.size} values ({fmt.bits_per_element:g} bits each) -> {out}")
    return 0
