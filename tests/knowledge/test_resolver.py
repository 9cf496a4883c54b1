"""Resolver logic: lexical paths, laterality enforcement, refusal, thresholds from the sidecar."""
from __future__ import annotations

import pytest
import torch

from sat import knowledge
from sat.knowledge.resolver import MAX_SUGGESTIONS, Resolver

LEFT_KIDNEY_VARIANTS = [
    "left kidney", "Left Kidney", "LEFT KIDNEY!!!", "kidney_left", "kidney, left", "kidney (L)",
    "L kidney", "lt kidney", "Lt. kidney", "sinistral kidney", "left kidney on T2 MRI",
    "segment the left kidney in abdominal CT", "left kidny", "the kidney on the left side",
    "upper pole of the left kidney", "left renal parenchyma", "left kidney lower pole cyst",
]


def _one_hot_resolver(always: str, threshold: float = 0.5) -> Resolver:
    """Terms embedded one-hot per concept; every unseen prompt 'looks like' concept ``always``."""
    tree = knowledge.default_tree()
    ids = list(tree.concepts)
    emb = torch.eye(len(ids))

    def encode(texts):
        return emb[[ids.index(always)] * len(texts)]

    return Resolver(tree, ids, emb, encode, threshold)


@pytest.mark.parametrize("text", LEFT_KIDNEY_VARIANTS)
def test_left_never_resolves_right_even_against_the_encoder(text):
    res = _one_hot_resolver("kidney_right").resolve(text)
    assert res.concept is not None
    assert knowledge.get(res.concept).laterality != "right", res


def test_laterality_moves_to_lateral_child_and_bilateral_parent():
    r = _one_hot_resolver("kidneys")
    assert r.resolve("the left one of the kidneys please").concept == "kidney_left"
    r = _one_hot_resolver("lung_left")
    assert r.resolve("lungs on both sides").concept == "lungs"


@pytest.mark.parametrize("text", ["IVC", "postcava", "inferior vena cava",
                                  "Inferior vena cava in abdominal CT", "segment the IVC on MRI"])
def test_ivc_forms(text):
    res = _one_hot_resolver("liver").resolve(text)
    assert res.concept == "inferior_vena_cava" and res.method in ("exact", "lexical")


def test_qualifiers_reported():
    r = _one_hot_resolver("liver")
    a, b = r.resolve_many(["liver in abdominal CT", "right kidney on T2 MRI"])
    assert (a.concept, a.modality) == ("liver", "CT")
    assert (b.concept, b.modality, b.laterality) == ("kidney_right", "MR", "right")


def test_bad_items_refused_without_stopping_the_batch():
    r = _one_hot_resolver("liver", threshold=2.0)  # nothing passes the embedding path
    out = r.resolve_many(["", "   ", "x" * 10_000, "?!...;", "liver", None, "qwerty"])
    assert [o.concept for o in out] == [None, None, None, None, "liver", None, None]
    assert "empty" in out[0].reason and "longer" in out[2].reason and "no anatomy" in out[3].reason
    assert len(out[6].suggestions) == MAX_SUGGESTIONS and out[6].suggestions[0]["concept"] == "liver"


def test_lexical_paths_do_not_load_embeddings():
    tree = knowledge.default_tree()

    def fail():
        raise AssertionError("term embeddings loaded for a lexical prompt")

    r = Resolver(tree, None, None, encode=lambda t: fail(), load_terms=fail)
    assert r.resolve("Frontal_lobe_L").concept == "frontal_lobe_left"
    assert r.resolve("").concept is None


def test_threshold_comes_from_the_sidecar(tmp_path):
    from sat.text.encoder import TextEncoderSpec
    from sat.text.resolver_factory import build_resolver
    from sat.text.sidecar import write_sidecar

    weights = tmp_path / "enc.safetensors"
    weights.write_bytes(b"")
    write_sidecar(weights, {"threshold": 0.4321})
    r = build_resolver(knowledge.default_tree(), TextEncoderSpec(finetuned=str(weights)))
    assert r.threshold == pytest.approx(0.4321)
    assert build_resolver(knowledge.default_tree(), None, threshold=0.7).threshold == 0.7


def test_embed_encodes_each_new_text_once():
    tree = knowledge.default_tree()
    ids = list(tree.concepts)
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return torch.nn.functional.normalize(torch.ones(len(texts), 4), dim=1)

    r = Resolver(tree, ids, torch.eye(len(ids), 4), encode)
    texts = [f"phrase {'x' * (i % 7)} {i}" for i in range(300)]
    out = r.embed(texts + texts[:3])
    assert out.shape == (len(texts) + 3, 4) and calls == [texts]  # one call, each text once
    r.embed(texts)  # all cached now
    assert len(calls) == 1


def test_concept_scores_are_the_best_term_per_concept():
    tree = knowledge.default_tree()
    ids = list(tree.concepts)
    g = torch.Generator().manual_seed(0)
    term_ids = [ids[i] for i in torch.randint(0, 40, (200,), generator=g).tolist()]  # unsorted, repeated
    table = torch.nn.functional.normalize(torch.randn(200, 8, generator=g), dim=1)
    r = Resolver(tree, term_ids, table, lambda t: torch.zeros(len(t), 8))
    q = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    got = r.concept_scores(q, chunk=2)  # (5, C), several chunks
    sims = q @ table.T
    for c, cid in enumerate(ids):
        cols = [k for k, t in enumerate(term_ids) if t == cid]
        want = sims[:, cols].amax(1) if cols else torch.full((5,), -1.0)
        assert torch.allclose(got[:, c], want, atol=1e-6), cid
    assert r.concept_scores(torch.zeros(0, 8)).shape == (0, len(ids))


def test_side_word_plus_a_term_of_the_bilateral_concept():
    r = _one_hot_resolver("liver")
    r.thesaurus = None
    res = r.resolve("left peroneal bone")  # "peroneal bone" is a term of the fibula only
    assert (res.concept, res.method) == ("fibula_left", "lexical")
    assert r.resolve("right peroneal bone on CT").concept == "fibula_right"
    # a concept without sides is not taken: "left pancreas" is left to the embedding
    assert r.resolve("left pancreas").method == "embedding"


def test_embedding_candidates_must_name_the_prompts_numbers():
    import torch

    from sat.knowledge.resolver import Resolver, numbers_of
    from sat.knowledge.tree import Concept, KnowledgeTree

    assert numbers_of(["c6", "segment"]) == {"6"} and numbers_of(["third", "toe"]) == {"3"}
    assert numbers_of(["ivd", "l4", "l5"]) == {"4", "5"} and numbers_of(["lamina", "vi"]) == {"6"}
    tree = KnowledgeTree([Concept(f"seg_{n}", f"spinal segment {n}", "d", "spine", "substructure")
                          for n in (5, 6)])
    ids = list(tree.concepts)
    emb = torch.eye(2)
    # the prompt's embedding is closest to segment 5, but it names 6
    r = Resolver(tree, ids, emb, lambda texts: torch.tensor([[0.9, 0.8]] * len(texts)), threshold=0.5,
                 thesaurus=None)
    assert r.resolve("cord piece C6").concept == "seg_6"
    assert r.resolve("cord piece").concept == "seg_5"
    assert r.resolve("cord piece C9").concept == "seg_5"  # no candidate names 9: similarity decides


def test_agreement_keys_fold_codes_numbers_and_directions():
    from sat.knowledge.resolver import agreement_keys

    assert agreement_keys(["c6", "segment"]) == ({"c6", "6"}, {"6"})
    assert agreement_keys(["musculus", "pterygoideus", "lateralis"])[0] == {"lateral"}
    assert agreement_keys(["upper", "end", "of", "radius"])[0] == {"superior"}
    assert agreement_keys(["pectoralis", "minor"])[0] == {"lesser"}
    assert agreement_keys(["liver"]) == (frozenset(), frozenset())


def test_agreement_never_trades_the_side_similarity_found():
    import torch

    from sat.knowledge.resolver import Resolver
    from sat.knowledge.tree import Concept, KnowledgeTree

    tree = KnowledgeTree([
        Concept("seg_r", "right anterior segment", "d", "thorax", "substructure", laterality="right", mirror="seg_l"),
        Concept("seg_l", "left lateral segment", "d", "thorax", "substructure", laterality="left", mirror="seg_r"),
        Concept("zone", "lateral zone", "d", "thorax", "substructure")])
    ids = list(tree.concepts)
    r = Resolver(tree, ids, torch.eye(3), lambda texts: torch.tensor([[0.9, 0.8, 0.0]] * len(texts)),
                 threshold=0.5, thesaurus=None)
    assert r.resolve("RML lateral piece").concept == "seg_r"  # "lateral" alone does not flip the side


def test_a_prompt_builds_only_the_lexical_keys_it_needs():
    """The first free-text prompt of a session pays for what it uses (issue 16): an exact term
    builds no index part, a paraphrase no initials and no agreement keys of unrelated concepts."""
    from sat.knowledge.tree import KnowledgeTree

    base = knowledge.default_tree()
    tree = KnowledgeTree(list(base.concepts.values()), base.hash)  # a fresh index, not the shared one
    ids = list(tree.concepts)
    emb = torch.eye(len(ids))
    resolver = Resolver(tree, ids, emb, lambda texts: emb[[ids.index("liver")] * len(texts)], 0.5, thesaurus=None)
    assert resolver.resolve("liver").method == "exact"
    assert not {"words", "_keys", "_abbreviations"} & set(vars(resolver.lexicon))
    res = resolver.resolve("liver as seen on the scan")
    assert (res.concept, res.method) == ("liver", "embedding")
    assert "_abbreviations" not in vars(resolver.lexicon) and len(resolver._keys) < 20
