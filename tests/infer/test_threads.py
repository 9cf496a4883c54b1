"""CPU thread policy: explicit counts, the environment override, and restoring torch's setting."""
from __future__ import annotations

import pytest
import torch

from sat.infer.threads import cpu_threads, probe_threads, resolve_threads


def test_resolve_and_restore(monkeypatch):
    assert resolve_threads(None) is None and resolve_threads(3) == 3
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(0)
    monkeypatch.setenv("SAT_NUM_THREADS", "1")
    assert resolve_threads("auto") == 1
    monkeypatch.delenv("SAT_NUM_THREADS")
    assert 1 <= resolve_threads("auto") <= max(1, torch.get_num_threads())
    assert probe_threads(1) == 1
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
