"""Reports: parse every tool's output into typed metrics, the off-chip memory energy model, and
the one way lightnorm runs an external tool.

* :mod:`.parsers` - Yosys ``stat`` (text and JSON), OpenSTA ``report_checks``/``report_power``,
  Vitis/Vivado HLS ``csynth.xml``, Vivado ``report_utilization``/``report_power``;
  :func:`~.parsers.parse_file` detects the kind from the content.
* :mod:`.energy` - bytes moved off chip by one BN layer in training and their energy.
* :mod:`.tools` - :class:`~.tools.ToolCommand` and :func:`~.tools.run_tool`.
"""

from .energy import (
    DRAM_PJ_PER_BYTE,
    SRAM_ACCESSES_PER_BYTE,
    SRAM_PJ_PER_BYTE,
    LayerEnergy,
    layer_energy,
    layer_traffic_bits,
)
from .parsers import (
    KINDS,
    ReportParseError,
    detect_kind,
    parse_file,
)

__all__ = [
    "DRAM_PJ_PER_BYTE", "KINDS", "LayerEnergy", "ReportParseError", "SRAM_ACCESSES_PER_BYTE",
    "SRAM_PJ_PER_BYTE", "detect_kind", "layer_energy", "layer_traffic_bits", "parse_file",
]
