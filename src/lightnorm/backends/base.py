"""What every backend of ``lightnorm_top`` is: a named design generator with its cache identity.

A backend renders the design behind the stable wrapper ``lightnorm_top`` (the port list of
docs/rtl.md section 4, the same for every backend and spec); co-simulation, synthesis, the flow
and the report take a backend by name from the registry (:func:`lightnorm.backends.get_backend`)
and ask it for the design, for what tells its artifacts apart in cache keys, and for which of its
modules another tool generated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from lightnorm.spec import Spec


class Backend(ABC):
    """One design generator behind ``lightnorm_top``."""

    #: the registry name (``--backend NAME``, ``backend=NAME``)
    name: ClassVar[str]
    #: how tables and figures name its design ("template", "XLS")
    label: ClassVar[str]
    #: one line for help texts and the report
    description: ClassVar[str]
    #: Verilator configuration its design needs for a clean ``-Wall`` lint ("": none)
    lint_waivers: ClassVar[str] = ""

    @abstractmethod
    def render(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None, **options: Any) -> dict[str, str]:
        """The design of ``spec``: ``<module>.v`` -> Verilog text, plus ``lightnorm.f`` (the
        sorted file list); the top is ``lightnorm_top``. ``clock_ns``: the clock a backend
        pipelines its design for (default the spec's ``hw.clock_ns``); ``liberty``: the cell
        library its delays are measured on (default OSU 0.18 um; a backend with a delay model
        of its own ignores it); ``options``: the backend's own."""

    def timing(self, spec: Spec, *, clock_ns: float | None = None,
               liberty: str | Path | None = None) -> dict[str, Any] | None:
        """What the backend predicted when it pipelined the design rendered with the same
        arguments: at least ``clock_ns`` and ``predicted_critical_ns`` (the slowest register
        stage it expects); None when it makes no prediction on the liberty's cells."""
        del spec, clock_ns, liberty
        return None

    def tool_versions(self) -> dict[str, str]:
        """Versions of the tools besides the template environment that shape the design."""
        return {}

    def cache_tag(self) -> tuple[str, ...]:
        """What tells this backend's artifacts (co-simulation models, synthesis results) apart
        in their cache keys: its name and tool versions."""
        return (self.name, *self.tool_versions().values())

    def generated_modules(self, files: Mapping[str, str]) -> set[str]:
        """The modules of a rendered design that another tool generated (synthesis reports
        their area apart); none unless the backend runs one."""
        return set()

    @property
    def flow_stage(self) -> str:
        """The flow stage that synthesizes this backend's design next to the default
        backend's at a common clock (:mod:`lightnorm.cost.backend_compare`)."""
        return f"synth_{self.name}"


__all__ = ["Backend"]
