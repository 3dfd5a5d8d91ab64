"""Benchmarks: scripts that print figures measured side by side in one run (never timed
tests). ``lightnorm bench NAME`` runs one of them."""
