"""Load specs from preset names or TOML files, and save them back losslessly."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from .accelerator import Spec
from .errors import SpecError
from .schema import build

PRESET_PACKAGE = "lightnorm.spec.presets"


def preset_names() -> list[str]:
    root = resources.files(PRESET_PACKAGE)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def from_dict(table: Any) -> Spec:
    """Build and validate a spec from a plain table (parsed TOML or JSON)."""
    return build(Spec, table, "")


def loads(text: str, source: str = "<string>") -> Spec:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("spec", source, f"a valid TOML file ({exc})") from None
    return from_dict(table)


def load(name_or_path: str | os.PathLike[str]) -> Spec:
    """A preset name (``lightnorm``) or a path to a TOML file."""
    text_name = os.fspath(name_or_path)
    path = Path(text_name)
    if text_name.endswith(".toml") or os.sep in text_name or path.is_file():
        if not path.is_file():
            raise SpecError("spec", text_name, "an existing TOML file or a preset name ("
                            + ", ".join(preset_names()) + ")")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError("spec", text_name, f"a readable UTF-8 file ({exc})") from None
        return loads(text, text_name)
    if text_name not in preset_names():
        raise SpecError("spec", text_name, "a preset name (" + ", ".join(preset_names())
                        + ") or a path to a .toml file")
    text = resources.files(PRESET_PACKAGE).joinpath(text_name + ".toml").read_text("utf-8")
    return loads(text, f"preset {text_name}")


def dumps(spec: Spec) -> str:
    """TOML text that :func:`loads` turns back into an equal spec."""
    return tomli_w.dumps(spec.to_dict())


def save(spec: Spec, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(dumps(spec), encoding="utf-8")
    tmp.replace(target)
