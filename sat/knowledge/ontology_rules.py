"""How the UBERON extractor places an ontology class in the knowledge tree: kind, region, and
whether the class belongs in a tree of human anatomy seen on CT / MR at all.

Every rule names UBERON classes by their labels (resolved to ids once per release), so the rules
read as anatomy, not as numbers.
"""
from __future__ import annotations

import re

from sat.knowledge.ontology import Term

# First matching ancestor decides the kind.
KIND_RULES = (
    ("lymph node", "organ"), ("blood vessel", "vessel"), ("lymphatic vessel", "vessel"),
    ("bone element", "bone"), ("cartilage element", "tissue"), ("muscle organ", "muscle"),
    ("gland", "gland"), ("respiratory airway", "airway"), ("anatomical cavity", "cavity"),
    ("anatomical space", "cavity"), ("ligament", "tissue"), ("tendon", "tissue"),
    ("nerve", "substructure"), ("ganglion", "substructure"), ("compound organ", "organ"),
)
# First matching ancestor (or the class itself) decides the region.
REGION_RULES = (
    ("brain", "brain"), ("vertebral column", "spine"), ("spinal cord", "spine"),
    ("heart", "thorax"), ("lung", "thorax"), ("mediastinum", "thorax"), ("pleura", "thorax"),
    ("thoracic cavity", "thorax"),
    ("liver", "abdomen"), ("stomach", "abdomen"), ("pancreas", "abdomen"), ("spleen", "abdomen"),
    ("kidney", "abdomen"), ("small intestine", "abdomen"), ("abdominal cavity", "abdomen"),
    ("urinary bladder", "pelvis"), ("prostate gland", "pelvis"), ("uterus", "pelvis"),
    ("ovary", "pelvis"), ("rectum", "pelvis"), ("pelvic girdle region", "pelvis"),
    ("pelvic region of trunk", "pelvis"), ("testis", "pelvis"),
    ("forelimb", "upper_limb"), ("pectoral girdle region", "upper_limb"),
    ("hindlimb", "lower_limb"),
    ("head", "head_neck"), ("neck", "head_neck"),
    ("thoracic segment of trunk", "thorax"), ("abdomen", "abdomen"),
)
# Classes under these are embryonic, microscopic or not human: never extracted.
EXCLUDED_UNDER = ("embryonic structure", "developing anatomical structure", "fin", "mesenchyme",
                  "epithelium", "nephron", "cell cluster", "hemolymphoid system gland", "extraembryonic structure",
                  "portion of organism substance", "anatomical line", "anatomical point", "anatomical surface")
# A class is kept only under one of these (macroscopic structures a scan can show).
KEPT_UNDER = ("blood vessel", "lymphatic vessel", "nerve", "ganglion", "bone element", "cartilage element",
              "muscle organ", "gland", "lymph node", "ligament", "tendon", "anatomical cavity",
              "respiratory airway", "nucleus of brain", "gray matter", "white matter", "compound organ",
              "joint", "synovial joint", "brain", "spinal cord", "heart", "lung", "liver", "kidney")
_NOT_HUMAN = re.compile(
    r"\b(fish|fishes|teleost|actinopterygi\w*|sarcopterygi\w*|chondrichthy\w*|avian|birds?|"
    r"reptil\w*|amphibian\w*|anura\w*|urodel\w*|frog|salamander|lizard|snake|turtle|crocodil\w*|"
    r"insect\w*|drosophila|larva\w*|tadpole|zebrafish|xenopus|chicken|chick|mouse|mice|murine|"
    r"rodent\w*|rat|rats|marsupial\w*|monotreme\w*|ruminant\w*|cattle|horse|equine|bovine|"
    r"canine|feline|pig|porcine|cetacean\w*|lamprey\w*|shark\w*|gill|gills|feather\w*|beak|"
    r"scale|scales|fin|fins|tentacle\w*|hagfish|embryo\w*|embryonic|fetal|foetal|fetus|"
    r"primordi\w*|anlage|placode\w*|rudiment\w*|presumptive|future|pre-?muscle|bud|buds|"
    r"non-?mammal\w*|lower vertebrates|some species|many species|vibrissa\w*|whisker\w*|"
    r"cell|cells|cellular|epitheli\w*|layer|stratum|zone|tunica|lamina propria|villus|villi|"
    r"crypt|crypts|acinus|tubule|glomerul\w*|capillary|capillaries|microvascul\w*|"
    r"metanephr\w*|mesonephr\w*|pronephr\w*|gubernacul\w*|gastrali\w*|secretion|type \d|mammalian|"
    r"jelly|mucosa|mucosal|submucosa|serosa|muscularis|adventitia|endothelium)\b",
    flags=re.IGNORECASE)
_BAD_SYNONYM = re.compile(r"[()\[\]{}<>@#;=%]|\bof organism\b|\bsensu\b|\b[A-Z]{2,}\d")


def label_ids(terms: dict[str, Term]) -> dict[str, str]:
    """Label -> id of every class (the first class wins a shared label)."""
    out: dict[str, str] = {}
    for t in terms.values():
        out.setdefault(t.label, t.id)
    return out


class Rules:
    """The rules above, resolved against one UBERON release."""

    def __init__(self, terms: dict[str, Term]) -> None:
        self.terms, self._lineage = terms, {}
        ids = label_ids(terms)
        self.kind = [(ids[lab], kind) for lab, kind in KIND_RULES if lab in ids]
        self.region = [(ids[lab], region) for lab, region in REGION_RULES if lab in ids]
        self.excluded = {ids[lab] for lab in EXCLUDED_UNDER if lab in ids}
        self.kept = {ids[lab] for lab in KEPT_UNDER if lab in ids}

    def lineage(self, t: Term) -> set[str]:
        """The class and every ancestor id: the JSON release's closure plus the OBO direct
        parents, or, for a class the JSON release lacks, its OBO ``is_a`` / ``part_of`` parents
        followed upwards (cached)."""
        if t.id not in self._lineage:
            if t.ancestors:
                self._lineage[t.id] = frozenset({t.id, *t.ancestors, *t.is_a, *t.part_of})
                return self._lineage[t.id]
            seen, todo = {t.id}, [*t.is_a, *t.part_of]
            while todo:
                pid = todo.pop()
                if pid not in seen:
                    seen.add(pid)
                    p = self.terms.get(pid)
                    todo += [*p.is_a, *p.part_of] if p else []
            self._lineage[t.id] = frozenset(seen)
        return self._lineage[t.id]

    def eligible(self, t: Term) -> bool:
        """Human, macroscopic, non-embryonic anatomy with a label."""
        # UBERON:0... is the core ontology; other ranges came from fish, amphibian and fossil anatomy
        if t.deprecated or not t.label or len(t.label) > 60 or not t.id.startswith("UBERON:0"):
            return False
        line = self.lineage(t)
        if line & self.excluded or not line & self.kept:
            return False
        if _NOT_HUMAN.search(t.label) or _NOT_HUMAN.search(t.definition):
            return False
        return True

    def kind_of(self, t: Term) -> str:
        line = self.lineage(t)
        return next((kind for tid, kind in self.kind if tid in line), "substructure")

    def region_of(self, t: Term) -> str:
        line = self.lineage(t)
        return next((region for tid, region in self.region if tid in line), "whole_body")


def usable_synonym(text: str, abbreviation: bool = False) -> bool:
    """A synonym worth a term of the tree: no references or codes, not too short or long."""
    text = text.strip()
    if not text or _BAD_SYNONYM.search(text) or len(text) > 70:
        return False
    if not abbreviation and len(text) < 4:
        return False
    return not _NOT_HUMAN.search(text)
