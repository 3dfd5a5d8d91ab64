"""The open-HLS backend: DSLX for Google XLS (``xls-python``), compiled in-process.

* :mod:`lightnorm.xls.dslx` renders DSLX functions from the templates in
  ``lightnorm/hls_templates/xls`` (arithmetic units, BFP codecs, lanes);
* :mod:`lightnorm.xls.design` assembles a spec's module (one function per role);
* :mod:`lightnorm.xls.compile` turns DSLX into IR, optimized IR, a batched JIT callable and
  scheduled, pipelined Verilog (cached on disk), and lints it;
* :mod:`lightnorm.xls.sim` simulates the pipelined Verilog with Verilator;
* :mod:`lightnorm.xls.cli_hls` is the ``lightnorm hls`` command;
* :mod:`lightnorm.xls.backend` puts XLS-generated arithmetic inside the template RTL's shell
  behind ``lightnorm_top`` (co-simulation, synthesis: ``backend="xls"``);
* :mod:`lightnorm.xls.bench` measures it (``python -m lightnorm.xls.bench [--synth]``).

Nothing here imports ``xls`` at import time. See docs/xls.md.
"""
