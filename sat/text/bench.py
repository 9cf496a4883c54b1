"""``sat concepts bench``: resolver throughput on CPU with cached concept embeddings.

Concept-term embeddings come from the on-disk cache and are loaded before timing. Four
workloads: ``lexical`` (qualified prompts that match a name or synonym), ``embedding`` (unseen
short phrasings, every one encoded), ``mixed`` (the held-out eval queries, cold prompt cache) and
``repeated`` (the same again with a warm prompt cache).
"""
from __future__ import annotations

import time

from sat.knowledge.resolver import Resolver
from sat.knowledge.tree import KnowledgeTree
from sat.text.queries import held_out_queries
from sat.text.splits import SplitConfig, split_tree


def throughput(resolver: Resolver, prompts: list[str], batch_size: int = 512) -> dict:
    """Resolve ``prompts`` in batches; returns prompts/s and the share that needed the encoder."""
    start = time.perf_counter()
    methods = []
    for i in range(0, len(prompts), batch_size):
        methods += [r.method for r in resolver.resolve_many(prompts[i:i + batch_size])]
    seconds = time.perf_counter() - start
    return {"prompts": len(prompts), "seconds": round(seconds, 3),
            "prompts_per_s": round(len(prompts) / max(seconds, 1e-9), 1),
            "encoded_share": round(sum(m in ("embedding", "refused") for m in methods) / max(1, len(methods)), 3)}


def workloads(tree: KnowledgeTree, n: int, seed: int = 0) -> dict[str, list[str]]:
    """The benchmark prompt lists (``n`` each, deterministic)."""
    concepts = list(tree.concepts.values())
    quals = ("{t} in abdominal CT", "segment the {t}", "{t} on T2 MRI", "{t}")
    lexical = [quals[i % len(quals)].format(t=concepts[i % len(concepts)].terms[(i // len(concepts))
               % len(concepts[i % len(concepts)].terms)]) for i in range(n)]
    embedding = [f"{concepts[i % len(concepts)].name} region {i // len(concepts)}" for i in range(n)]
    mixed = [q.text for q in held_out_queries(tree, split_tree(tree, SplitConfig(seed=seed)), "eval")][:n]
    return {"lexical": lexical, "embedding": embedding, "mixed": mixed, "repeated": mixed}


def run_bench(tree: KnowledgeTree, spec=None, n: int = 1000) -> dict[str, dict]:
    """Benchmark a resolver over the full tree; returns one :func:`throughput` dict per workload."""
    resolver = Resolver.from_spec(tree, spec)
    resolver.terms()  # concept embeddings: from the cache, outside the timing
    resolver.resolve_many(["warm-up phrase for the encoder"])
    resolver.clear_cache()
    return {name: throughput(resolver, prompts) for name, prompts in workloads(tree, n).items()}
