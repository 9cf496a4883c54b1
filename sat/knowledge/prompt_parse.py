"""Split a free-text prompt into the anatomy it names and its qualifiers.

"liver in abdominal CT" -> anatomy "liver", modality CT; "right kidney on T2 MRI" -> anatomy
"right kidney", modality MR, laterality right. The parse runs :data:`STAGES` in order, each a
named function that cuts one kind of qualifier out of the text and records it:

1. ``modality``: modality phrases with the region adjective or sequence that qualifies them
   ("abdominal CT", "brain MRI", "T2-weighted", "PET/CT");
2. ``contrast``: contrast state ("post-contrast", "contrast-enhanced", "non-contrast");
3. ``phase``: contrast phase ("portal venous phase");
4. ``scan``: references to the image itself ("in this scan", "on the images");
   ``brackets``: a bracketed region setting ("(the abdomen)"), then brackets become spaces;
5. ``task``: task words around the anatomy ("segmentation of", "delineation of",
   "identified via ...", "visualized in ...");
6. ``report``: report phrasing ("CT showing X structures", "region characterized by X");
7. ``region``: a trailing region setting ("in the whole body region", "in the abdomen",
   "within head and neck") when words remain before it;
8. ``filler``: articles, polite words and leading/trailing filler.

Stages 5-7 apply to short prompts only (at most :data:`MAX_PHRASE_WORDS` words), so a sentence
that describes a structure is left whole. Laterality words stay in the anatomy text (they are part
of names such as "left kidney") and are also reported separately so the resolver can enforce them.
Words that belong to a name stay anatomy: a region adjective is dropped only when it qualifies a
modality ("abdominal CT", not "abdominal aorta"), a region phrase only after a preposition of
setting ("in", "within"; "body of pancreas" and "base of the skull" stay whole), and "T2" is a
sequence only when it reads like one ("T2 MRI", "on T2w"), never in "T2 vertebra".
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sat.knowledge.glossary import split_camel

MAX_PHRASE_WORDS = 14
_REGION = (r"(?:(?:abdominal|abdomen|abdo|thoracic|thorax|chest|pelvic|pelvis|head|neck|"
           r"head and neck|brain|cardiac|spine|spinal|whole[- ]body|liver|renal|lung|"
           r"abdominopelvic|prostate|breast|knee|shoulder|hip|whole[- ]spine)\s+)?")
_SEQ = r"(?:t1|t2)(?:[- ]?(?:w|weighted|ce|c|gd|fs|post))*"
_PURPOSE = r"(?:(?:planning|diagnostic|staging|follow[- ]up|routine|clinical|preoperative)\s+)?"
_REGION_NOUN = (r"(?:whole[- ]?body|entire body|full body|body|abdomen|abdominal cavity|upper abdomen|lower abdomen|"
                r"abdominopelvic (?:region|cavity)|thorax|thoracic cavity|chest|pelvis|pelvic cavity|lesser pelvis|"
                r"pelvic region|head and neck|head & neck|head|neck|brain|spine|spinal column|trunk|torso|"
                r"upper limbs?|lower limbs?|upper extremit(?:y|ies)|lower extremit(?:y|ies)|extremit(?:y|ies)|"
                r"cranium|mediastinum|retroperitoneum)")
# "CT of the head and neck", "MRI of the brain": the region after a modality is its setting
_OF_REGION = rf"(?:\s+of\s+(?:the\s+)?{_REGION_NOUN}(?:\s+region)?)?"
_MODALITY_PATTERNS = [
    ("MR", rf"\b{_PURPOSE}{_REGION}(?:{_SEQ}\s+)?(?:(?:contrast[- ]enhanced )?mr angiography|"
           rf"magnetic resonance(?: imaging)?|mri|mra|mr)\b{_OF_REGION}"),
    ("MR", rf"\b(?:{_SEQ}[- ]weighted|t1w|t2w|t1ce|t1c|t1gd|flair(?!\s+hyperintens)|dwi|adc|dixon|swi)"
           r"(?:\s+(?:images?|sequences?|scans?))?\b"),
    ("MR", rf"\b(?<=on |in )(?:{_SEQ})(?=\s*(?:$|[,.;)]))"),
    ("PET", rf"\b{_PURPOSE}{_REGION}(?:pet(?:[- /]ct)?|fdg(?:[- ]pet)?|positron emission tomography)\b{_OF_REGION}"),
    ("US", rf"\b{_REGION}(?:ultrasound|sonography|echography|ultrasonography)\b{_OF_REGION}"),
    ("CT", rf"\b{_PURPOSE}{_REGION}(?:(?:contrast[- ]enhanced|non[- ]contrast|low[- ]dose) )?"
           rf"(?:ct angiography|computed tomography|cat scan|ncct|cect|cta|ct)\b{_OF_REGION}"),
]
_MODALITY_PATTERNS = [(name, re.compile(pattern)) for name, pattern in _MODALITY_PATTERNS]
# Cheap guards: a stage whose trigger words are absent is skipped (most prompts are bare names).
_ANY_MODALITY = re.compile(r"\b(?:ct\w*|cta|cect|ncct|mri?|mra|pet|fdg|ultrasound|\w*sonography|echography|"
                           r"computed|magnetic|positron|cat|t1\w*|t2\w*|flair|dwi|adc|dixon|swi)\b")
_TASK_WORDS = re.compile(r"\b(?:identified|visuali[sz]ed|seen|depicted|shown|imaged|detected|captured|displayed|"
                         r"demonstrated|delineated|segmented|outlined|observed|appearing|visible|found|located)\b")
_REPORT_WORDS = re.compile(r"\b(?:showing|depicting|demonstrating|displaying|revealing|with visible|containing|"
                           r"including|characteri[sz]ed|consistent with|representing|corresponding)\b")
_CONTRAST = re.compile(r"\b(?:(?:post|pre)[- ]?contrast|(?:contrast|gadolinium|gd|iv contrast)[- ]enhanced|"
                       r"non[- ]?contrast|unenhanced|non[- ]?enhanced|with(?:out)? (?:iv )?contrast)\b")
_PHASE = re.compile(r"\b(?:(?:portal[- ])?venous|arterial|delayed|non[- ]contrast|late|early|"
                    r"nephrographic|hepatobiliary|excretory|equilibrium)\s+phase\b")
_SCAN_REF = re.compile(r"\b(?:in|on|from|within|of|at|for)\s+(?:the|this|that|these|an?|my|our)?\s*"
                       r"(?:3d\s+)?(?:image|images|scan|scans|volume|volumes|study|series|sequence|exam|"
                       r"examination|slice|slices|dataset)\b")
_TASK_HEAD = re.compile(
    r"^\s*(?:(?:automatic|automated|fully automatic|accurate|precise|manual|3d|volumetric|semantic|"
    r"robust|please)\s+)*(?:segmentation|segmenting|delineation|delineating|delineate|contouring|"
    r"contour|outlining|outline|annotation|annotate|localization|localisation|localize|localise|"
    r"detection|detect|identification|identify|extraction|extract|masking|mask|labeling|labelling|"
    r"quantification|volumetry|measurement)(?:\s+(?:of|for))?\s+")
_TASK_TAIL = re.compile(
    r"\s+(?:as\s+)?(?:identified|visuali[sz]ed|seen|depicted|shown|imaged|detected|captured|"
    r"displayed|demonstrated|delineated|segmented|outlined|observed|appearing|visible|found|"
    r"located)\s+(?:via|in|on|with|by|using|at|from|through|within)\b.*$")
_REPORT_SHOWING = re.compile(r"^(.*?)\s*\b(?:showing|depicting|demonstrating|displaying|revealing|"
                             r"with visible|containing|including)\s+(.+)$")
_GENERIC_HEAD = re.compile(r"^(?:(?:the|a|an)\s+)?(?:region|regions|area|areas|zone|structure|structures|"
                           r"tissue|part|portion|voxels?|pixels?)\s+(?:characteri[sz]ed by|consistent "
                           r"with|representing|corresponding to|of|containing)\s+(.+)$")
_GENERIC_HEAD_WORD = re.compile(r"\s*(?:(?:the|a|an)\s+)?(?:region|area|zone|structure|tissue|part|portion|voxel|pixel)")
_CHARACTERIZED = re.compile(r"\s+(?:characteri[sz]ed by|consistent with)\s+.*$")
_REGION_PHRASE = re.compile(
    r"\s+(?:in|on|within|across|throughout|inside|from|at)\s+(?:the\s+|a\s+|an\s+|his\s+|her\s+)?"
    rf"{_REGION_NOUN}(?:\s+(?:region|area|cavity|compartment|part|images?|scans?|volumes?|data))*\s*$")
# "(the abdomen)": a bracketed region setting
_BRACKETED_REGION = re.compile(rf"\(\s*(?:(?:in|on|of|the)\s+)*{_REGION_NOUN}(?:\s+region)?\s*\)")
_REPORT_TAIL = re.compile(r"\s+(?:structures?|regions?|areas?)$")
_FILLER = frozenset((
    "in on from of at within using with for the a an this that these those please segment "
    "segmentation segmented mask masks delineate delineation outline outlined contour contours "
    "show me find locate mark highlight label draw give i need want can could would you us "
    "where is are it its which what patient patients patient's image scan volume study series "
    "sequence axial coronal sagittal view structure structures seen visible shown depicted").split())
# Filler that is a verb only when it leads: "segment the liver" but "posterior liver segment".
_LEADING_ONLY = frozenset(("segment",))
# Nouns a roman numeral follows ("digit I", "nerve I", "segment I", "cervical vertebra I"), and the
# Latin adjectives that follow "vertebra" ("vertebra cervicalis I"): a trailing "i" is then a number.
_NUMBERED_NOUNS = frozenset(("digit", "nerve", "segment", "rib", "ray", "lamina", "metacarpal", "metatarsal",
                             "toe", "finger", "phalanx", "ventricle", "lobule", "layer", "zone", "level",
                             "vertebra", "cervicalis", "thoracica", "thoracalis", "lumbalis"))
# Filler only when it trails other words: "liver region" is the liver.
_TRAILING_ONLY = frozenset(("region", "area"))
# Generic nouns after an organ word: "splenic tissue", "hepatic structure" name the organ.
_GENERIC_TAIL = frozenset(("tissue", "tissues", "parenchyma", "organ", "organs", "structure", "structures",
                           "region", "regions", "area", "areas", "anatomy", "cavity"))
_LEFT = re.compile(r"\b(left|lt|l|sinister|sinistra|sinistral|sinistrum|sin)\b")
_RIGHT = re.compile(r"\b(right|rt|r|dexter|dextra|dextral|dextrum)\b")
# "two" as a count ("the two kidneys"), not inside a compound adjective ("two-headed muscle")
_BILATERAL = re.compile(r"\b(bilateral|both|either|two(?!-)|pair|paired)\b")
_WORD = re.compile(r"[a-z0-9]")


@dataclass
class ParsedPrompt:
    """A parsed prompt.

    Attributes:
        text: the original prompt.
        anatomy: the anatomy part (qualifiers and filler removed), lower case; empty when the
            prompt holds no letters or digits.
        modality: ``CT``/``MR``/``PET``/``US`` or ``None``.
        laterality: ``left``/``right`` if the prompt says so, ``None`` if it does not,
            ``both`` when both sides are named, or for bilateral wording when no one side is.
        qualifiers: ``(stage, text)`` of every qualifier cut out, in stage order
            (``("modality", "abdominal ct")``, ``("region", "in the whole body region")``).
        core: the anatomy without a trailing generic noun ("splenic tissue" -> "splenic"), or
            ``""`` when there is none.
    """

    text: str
    anatomy: str
    modality: str | None
    laterality: str | None
    qualifiers: tuple[tuple[str, str], ...] = ()
    core: str = ""


@dataclass
class _State:
    low: str
    text: str
    modality: str | None = None
    qualifiers: list[tuple[str, str]] = field(default_factory=list)

    def cut(self, pattern: re.Pattern | str, stage: str) -> bool:
        """Remove every match of ``pattern``, recording it under ``stage``; True if any."""
        found = []

        def take(m: re.Match) -> str:
            found.append(" ".join(m.group(0).split()))
            return " "

        self.low = re.sub(pattern, take, self.low)
        self.qualifiers += [(stage, f) for f in found if f]
        return bool(found)

    def short(self) -> bool:
        return len(self.low.split()) <= MAX_PHRASE_WORDS


def _modality(s: _State) -> None:
    if "US" in s.text and re.search(r"\bUS\b", s.text):
        s.modality = "US"
        s.cut(r"\bus\b", "modality")
    if not _ANY_MODALITY.search(s.low):
        return
    for name, pattern in _MODALITY_PATTERNS:
        if s.cut(pattern, "modality"):
            s.modality = s.modality or name


def _contrast(s: _State) -> None:
    if "contrast" in s.low or "enhanced" in s.low:
        s.cut(_CONTRAST, "contrast")


def _phase(s: _State) -> None:
    if "phase" in s.low:
        s.cut(_PHASE, "phase")


def _scan(s: _State) -> None:
    s.cut(_SCAN_REF, "scan")


def _brackets(s: _State) -> None:
    if "(" in s.low or "[" in s.low:
        s.cut(_BRACKETED_REGION, "region")
        s.low = re.sub(r"[()\[\]]", " ", s.low)


def _task(s: _State) -> None:
    if s.short():
        s.cut(_TASK_HEAD, "task")
        if _TASK_WORDS.search(s.low):
            s.cut(_TASK_TAIL, "task")


def _report(s: _State) -> None:
    if not s.short() or not _REPORT_WORDS.search(s.low) and not _GENERIC_HEAD_WORD.match(s.low):
        return
    low = " ".join(s.low.split())
    m = _REPORT_SHOWING.match(low)
    if m:  # "<setting> showing <anatomy> structures"
        s.qualifiers.append(("report", (m.group(1) + " " + low[m.end(1):m.start(2)]).strip()))
        low = m.group(2)
        tail = _REPORT_TAIL.search(low)
        if tail and len(low.split()) > 1:
            s.qualifiers.append(("report", tail.group(0).strip()))
            low = low[:tail.start()]
    m = _GENERIC_HEAD.match(low)
    if m:  # "region characterized by <anatomy>"
        s.qualifiers.append(("report", low[:m.start(1)].strip()))
        low = m.group(1)
    s.low = f" {low} "
    s.cut(_CHARACTERIZED, "report")  # "<anatomy> characterized by <finding>"


_DANGLING = frozenset("in on at of the a an with using from for within via by".split())


def _region(s: _State) -> None:
    words = [w for w in (w.strip(",;:") for w in s.low.split()) if w]
    while words and words[-1].strip(",;:") in _DANGLING:  # left by a cut modality: "... region on"
        words.pop()
    low = " ".join(words)
    m = _REGION_PHRASE.search(" " + low) if s.short() else None
    if m and m.start() > 0:  # something names the anatomy before the setting
        s.qualifiers.append(("region", m.group(0).strip()))
        s.low = f" {(' ' + low)[:m.start()]} "


STAGES: tuple[tuple[str, Callable[[_State], None]], ...] = (
    ("modality", _modality), ("contrast", _contrast), ("phase", _phase), ("scan", _scan),
    ("brackets", _brackets), ("task", _task), ("report", _report), ("region", _region),
)


def _strip_filler(words: list[str]) -> tuple[int, int]:
    """``(start, end)`` of ``words`` without filler at both ends, keeping inner filler ("head of
    pancreas")."""
    start, end = 0, len(words)
    while start < end and words[start].strip("?!.,;:'\"()") in _FILLER:
        start += 1
    trailing = (_FILLER - _LEADING_ONLY) | _TRAILING_ONLY
    while end - start > 1 and (last := words[end - 1].strip("?!.,;:'\"()")) in trailing:
        if last == "i" and words[end - 2] in _NUMBERED_NOUNS:
            break  # "manual digit I", "cranial nerve I": the numeral one, not the pronoun
        end -= 1
    return start, end


def _laterality(low: str) -> str | None:
    left, right = bool(_LEFT.search(low)), bool(_RIGHT.search(low))
    # one named side wins over a count ("the two lobes of the left lung" is the left lung's)
    return "both" if left and right else "left" if left else "right" if right else \
        "both" if _BILATERAL.search(low) else None


def parse_prompt(text: str) -> ParsedPrompt:
    """Separate qualifiers from anatomy in ``text`` (any string; never raises)."""
    text = text if isinstance(text, str) else str(text)
    state = _State(" " + re.sub(r"[_\s]+", " ", split_camel(text).lower()) + " ", text)
    for _, stage in STAGES:
        stage(state)
    low = state.low
    words = [w for w in (w.strip(",;:") for w in low.split()) if w]
    start, end = _strip_filler(words)
    kept, dropped = words[start:end], words[:start] + words[end:]
    if dropped:
        state.qualifiers.append(("filler", " ".join(dropped)))
    anatomy = " ".join(kept).strip(" ?!.,;:'\"")
    if not _WORD.search(anatomy):
        # a prompt made only of filler ("the image") keeps its words for the resolver to judge
        anatomy = " ".join(low.split()) if _WORD.search(low) else ""
    ws = anatomy.split()
    core = " ".join(ws[:-1]) if len(ws) > 1 and ws[-1] in _GENERIC_TAIL else ""
    return ParsedPrompt(text=text, anatomy=anatomy, modality=state.modality, laterality=_laterality(low),
                        qualifiers=tuple(state.qualifiers), core=core)
