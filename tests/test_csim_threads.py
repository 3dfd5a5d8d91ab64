"""The C-simulation shim splits channels across threads: every split gives the same bits."""

from __future__ import annotations

import pytest

from lightnorm.spec import load
from lightnorm.verify import csim


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threaded_csim_is_bit_exact(threads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNORM_CSIM_THREADS", threads)
    res = csim.compare(load("lightnorm"), (4, 7, 16, 17), seed=3, pass_="both")
    assert res["elements"] > 0 and res["bit_exact"], res["first_mismatches"][:3]
