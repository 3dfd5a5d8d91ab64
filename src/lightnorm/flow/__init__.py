"""Tie the pieces together: run the flow's stages per spec with a results store, sweeps over
spec fields (local or on Dask), regression co-simulation (docs/flow.md).

Depends on everything below it (spec, codegen, verify, reports); nothing depends on it but the
command line.
"""
