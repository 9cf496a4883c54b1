"""The anatomy knowledge tree and the text -> concept resolver.

Module-level queries use the default tree (``knowledge_tree/`` or ``$SAT_KNOWLEDGE_TREE``),
loaded once::

    from sat import knowledge
    knowledge.get("kidney_left").name          # 'left kidney'
    knowledge.mirror("kidney_left").id         # 'kidney_right'
    knowledge.ancestors("kidney_left")         # ['kidneys', 'urinary_system', ...]
    knowledge.parse_prompt("right kidney on T2 MRI").modality   # 'MR'

``Resolver`` and ``Resolution`` are imported lazily (they need torch).
"""
from __future__ import annotations

from sat.knowledge.prompt_parse import ParsedPrompt, parse_prompt
from sat.knowledge.tree import Concept, KnowledgeTree, load_tree
from sat.knowledge.validate import validate_tree

__all__ = ["Concept", "KnowledgeTree", "ParsedPrompt", "Resolution", "Resolver", "ancestors",
           "children", "default_tree", "descendants", "get", "load_tree", "lookup", "mirror",
           "parents", "parse_prompt", "search", "siblings", "validate_tree"]


def default_tree() -> KnowledgeTree:
    """The default tree, loaded once per process."""
    return load_tree()


def get(cid: str) -> Concept:
    """The concept with id ``cid`` (``KeyError`` naming it if unknown)."""
    return default_tree().get(cid)


def lookup(term: str) -> Concept | None:
    """Exact match of a normalised id, name or synonym; ``None`` if nothing matches."""
    return default_tree().lookup(term)


def search(text: str, limit: int = 10, region: str | None = None) -> list[Concept]:
    """Concepts whose terms contain ``text`` (normalised substring), best first."""
    return default_tree().search(text, limit=limit, region=region)


def parents(cid: str) -> list[str]:
    """Direct ``is_a`` and ``part_of`` parents of ``cid``."""
    return default_tree().parents(cid)


def children(cid: str) -> list[str]:
    """Direct children of ``cid``."""
    return default_tree().children(cid)


def ancestors(cid: str) -> list[str]:
    """All transitive parents of ``cid``, nearest first."""
    return default_tree().ancestors(cid)


def descendants(cid: str) -> list[str]:
    """All transitive children of ``cid``, nearest first."""
    return default_tree().descendants(cid)


def siblings(cid: str) -> list[str]:
    """Concepts sharing a direct parent with ``cid``."""
    return default_tree().siblings(cid)


def mirror(cid: str) -> Concept | None:
    """The opposite-side concept of ``cid``, or ``None``."""
    return default_tree().mirror(cid)


def __getattr__(name: str):
    if name in ("Resolver", "Resolution"):
        from sat.knowledge import resolver

        return getattr(resolver, name)
    raise AttributeError(f"module 'sat.knowledge' has no attribute {name!r}")
