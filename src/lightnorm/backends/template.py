"""The template backend: ``lightnorm_top`` and every module from the Verilog templates
(:mod:`lightnorm.codegen.rtl`, ``templates/rtl/``): the reference design of every spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightnorm.codegen.rtl import render_rtl, rtl_context, timing_plan
from lightnorm.spec import Spec, SpecError

from .base import Backend


class TemplateBackend(Backend):
    name = "template"
    label = "template"
    description = "the template RTL (lightnorm.codegen.rtl, docs/rtl.md)"

    def render(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None, **options: Any) -> dict[str, str]:
        # its registers are placed for clock_ns (default the spec's) from the operator library
        # characterized on the liberty (codegen.timing)
        if options:
            key, value = next(iter(options.items()))
            raise SpecError(f"backend {self.name}: option {key}", value,
                            "no option (the template RTL has none)")
        return render_rtl(spec, clock_ns=clock_ns, liberty=liberty)

    def timing(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None) -> dict[str, Any] | None:
        plan = timing_plan(spec, clock_ns, liberty)
        rtl_context(spec, plan)  # the plan's choices for this design
        return plan.summary()

    def cache_tag(self) -> tuple[str, ...]:
        # the reference design: its models and synthesis results are keyed without a tag, as
        # they were before there were backends (the cache entries stay valid)
        return ()


__all__ = ["TemplateBackend"]
