"""The template backend: ``lightnorm_top`` and every module from the Verilog templates
(:mod:`lightnorm.codegen.rtl`, ``templates/rtl/``): the reference design of every spec."""

from __future__ import annotations

from typing import Any

from lightnorm.codegen.rtl import render_rtl
from lightnorm.spec import Spec, SpecError

from .base import Backend


class TemplateBackend(Backend):
    name = "template"
    label = "template"
    description = "the template RTL (lightnorm.codegen.rtl, docs/rtl.md)"

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               **options: Any) -> dict[str, str]:
        # its register stages are fixed by the templates: clock_ns does not change the design
        if options:
            key, value = next(iter(options.items()))
            raise SpecError(f"backend {self.name}: option {key}", value,
                            "no option (the template RTL has none)")
        return render_rtl(spec)

    def cache_tag(self) -> tuple[str, ...]:
        # the reference design: its models and synthesis results are keyed without a tag, as
        # they were before there were backends (the cache entries stay valid)
        return ()


__all__ = ["TemplateBackend"]
