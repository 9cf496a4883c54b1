"""Segmenter(warm_text=True) builds the resolver and runs a free-text prompt through it in the
background; the first use of the resolver waits for that warm-up instead of building a second one."""
from __future__ import annotations

import threading
import time


class _StubResolver:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def terms(self):
        time.sleep(0.2)  # long enough for the main thread to arrive while the warm-up runs
        self.calls.append("terms")

    def resolve_many(self, texts):
        self.calls.append(f"resolve_many:{threading.current_thread().name}")
        return []

    def clear_cache(self):
        self.calls.append("clear_cache")


def test_warm_text_builds_once_in_the_background(tiny_checkpoint, monkeypatch):
    from sat.infer.segmenter import Segmenter
    from sat.text import resolver_factory

    built = []

    def build_resolver(tree, spec=None, *a, **kw):
        built.append(threading.current_thread().name)
        return _StubResolver()

    monkeypatch.setattr(resolver_factory, "build_resolver", build_resolver)
    seg = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", warm_text=True)
    resolver = seg.resolver  # waits for the warm-up
    assert built == ["sat-text-warmup"]
    assert resolver.calls == ["terms", "resolve_many:sat-text-warmup", "clear_cache"]
    assert seg.resolver is resolver and not seg.start_text_warmup().is_alive()


def test_no_warm_up_by_default_or_with_a_given_resolver(tiny_checkpoint, fast_resolver):
    from sat.infer.segmenter import Segmenter

    assert Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")._warmup is None
    seg = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver, warm_text=True)
    assert seg._warmup is None and seg.resolver is fast_resolver


def test_small_encoder_calls_restore_the_thread_count():
    import torch

    from sat.text.encoder import MiniLMTextEncoder, minilm_dir

    enc = MiniLMTextEncoder(minilm_dir()).eval()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            one = enc(["left kidney"])
        assert torch.get_num_threads() == 2 and one.shape == (1, 384)
    finally:
        torch.set_num_threads(before)
