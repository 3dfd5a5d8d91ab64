"""The tools layer: how lightnorm runs and reads every external tool.

One tool runner (:mod:`.runner`), one cache root (:mod:`.cache`), one file lock (:mod:`.locks`),
the Verilator build and lint helpers (:mod:`.verilator`), g++ (:mod:`.gxx`), Yosys, OpenSTA and
the liberty (:mod:`.eda`), Google XLS in-process (:mod:`.xls`) and the typed parsers of tool
reports (:mod:`.parsers`). It imports nothing of lightnorm but :mod:`lightnorm.errors`; no
module outside it starts a process.
"""
