"""Prompt styles of the robustness study, all derived from the knowledge tree, never from masks.

* ``canonical``: the concept's name ("left kidney").
* ``synonym``: a tree synonym that is not a mere case or underscore variant of the name
  (:func:`sat.bench.demo.synonym_for`, "L kidney").
* ``definition``: the tree's definition sentence.
* ``paraphrase``: the profile's templates, e.g. "the {name} in this {modality} scan".
* ``modality``: the profile's modality-qualified template, e.g. "left kidney on MR"; segmented
  without a modality argument, so the qualifier itself sets the modality.

``canonical`` and ``synonym`` rows come from :func:`sat.bench.demo.evaluate`; this module builds the
other styles for :func:`sat.bench.phantom_cases.evaluate_prompts`.
"""
from __future__ import annotations

from sat.bench.phantom_cases import StyleFn

STYLES = ("canonical", "synonym", "definition", "paraphrase", "modality")
QUALIFIER_STYLES = ("modality",)  # the prompt's qualifier decides the modality


def _same(text: str) -> list[tuple[str, str]]:
    return [(text, text)]


def extra_styles(paraphrase_templates: tuple[str, ...], modality_template: str) -> dict[str, StyleFn]:
    """Style name -> prompt builder for the styles :func:`sat.bench.demo.evaluate` does not run."""

    def definition(c, modality: str) -> list[tuple[str, str]]:
        return _same(c.definition)

    def paraphrase(c, modality: str) -> list[tuple[str, str]]:
        return [(t, t) for t in dict.fromkeys(tpl.format(name=c.name, modality=modality)
                                                for tpl in paraphrase_templates)]

    def qualified(c, modality: str) -> list[tuple[str, str]]:
        return _same(modality_template.format(name=c.name, modality=modality))

    return {"definition": definition, "paraphrase": paraphrase, "modality": qualified}


def synonym_embedding_style(synonyms: dict[str, str]) -> dict[str, StyleFn]:
    """The canonical name is sent, but the model's table row holds the synonym's embedding.

    Used with a network whose concept-table rows were replaced by the text encoder's embedding of
    ``synonyms[concept id]`` (:func:`sat.bench.universal.swap_rows`): the concept is
    reached only through the synonym's text.
    """

    def fn(c, modality: str) -> list[tuple[str, str]]:
        return [(c.name, synonyms.get(c.id, c.name))]

    return {"synonym_embedding": fn}
