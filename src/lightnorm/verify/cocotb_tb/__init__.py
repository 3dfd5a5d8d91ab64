"""cocotb testbench of ``lightnorm_top`` (run through :mod:`lightnorm.verify.cosim`).

``test_lightnorm``: the cocotb test (runs, waits, scores); ``hexio``: the bulk word packing of
stimulus and capture files shared with the host side; ``scoreboard``: the bulk comparison. Only
NumPy is imported here: the simulator process stays light.
"""
