"""What a generated design costs: synthesis (Yosys + OpenSTA) with simulated switching
activity (:mod:`.synth`, :mod:`.activity`), single-unit figures (:mod:`.units`), the off-chip
memory energy model (:mod:`.energy`) and the template-vs-XLS comparison at a common clock
(:mod:`.backend_compare`)."""
