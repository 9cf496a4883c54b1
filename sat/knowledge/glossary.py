"""Rewrite Latin anatomical terms and structure-naming abbreviations into plain English.

Prompts arrive in Terminologia Anatomica Latin ("arteria hepatica communis"), in radiotherapy
structure nomenclature ("OpticNrv_L", "Glnd_Submand_R") or in English. :func:`english` maps
each word through a general word list (Latin nouns, adjectives and genitives; TG-263-style
abbreviations), splits CamelCase, and turns Latin noun-first order into English adjective-first
order ("arteria hepatica communis" -> "common hepatic artery"). :func:`organ_reading` also
turns organ adjectives into the organ ("hepatic segment" -> "liver segment") for order-free
lexical matching. The lists are general vocabulary, word by word; they name no concept of the
knowledge tree.
"""
from __future__ import annotations

import re
import unicodedata

# Latin words and their English forms (nominative, genitive, plural and gendered forms).
_LATIN_NOUNS = {
    "arteria": "artery", "arteriae": "arteries", "vena": "vein", "venae": "veins", "nervus": "nerve",
    "nervi": "nerves", "musculus": "muscle", "musculi": "muscles", "glandula": "gland",
    "glandulae": "glands", "os": "bone", "ossis": "bone", "ossa": "bones", "lobus": "lobe",
    "lobi": "lobes", "ren": "kidney", "renes": "kidneys", "hepar": "liver", "lien": "spleen",
    "pulmo": "lung", "pulmones": "lungs", "cor": "heart", "ventriculus": "ventricle",
    "ventriculi": "ventricles", "vesica": "bladder", "gaster": "stomach", "intestinum": "intestine",
    "ductus": "duct", "canalis": "canal", "cavum": "cavity", "cavitas": "cavity", "corpus": "body",
    "caput": "head", "cauda": "tail", "collum": "neck", "truncus": "trunk", "arcus": "arch",
    "processus": "process", "columna": "column", "costa": "rib", "costae": "ribs",
    "clavicula": "clavicle", "membrum": "limb", "pes": "foot", "manus": "hand", "oculus": "eye",
    "oculi": "eyes", "auris": "ear", "nasus": "nose", "lingua": "tongue",
    "palatum": "palate", "mamma": "breast",
    "ovarium": "ovary", "ovaria": "ovaries", "tuba": "tube", "tubae": "tubes", "prostata": "prostate",
    "substantia": "substance", "membrana": "membrane", "paries": "wall", "valva": "valve",
    "vas": "vessel", "vasa": "vessels", "nodus": "node", "nodi": "nodes", "tractus": "tract",
    "systema": "system", "diaphragma": "diaphragm", "meatus": "canal", "regio": "region",
    "pars": "part", "hilus": "hilum", "hypophysis": "pituitary gland", "mesencephalon": "midbrain",
    "vesicula": "vesicle", "vesiculae": "vesicles", "cerebrum": "cerebrum", "cisterna": "cistern",
    "plexus": "plexus", "ganglion": "ganglion", "radix": "root", "radices": "roots", "basis": "base",
    "sinus": "sinus", "fossa": "fossa", "bulbus": "bulb", "cornu": "horn", "lamina": "lamina",
    "fasciculus": "bundle", "lymphonodus": "lymph node", "lymphonodi": "lymph nodes", "oris": "mouth",
    "articulatio": "joint", "articulationes": "joints", "facies": "surface", "epicondylus": "epicondyle",
    "condylus": "condyle", "tuberculum": "tubercle", "tubercula": "tubercles", "tuberositas": "tuberosity",
    "ligamentum": "ligament", "ligamenta": "ligaments", "tendo": "tendon", "orificium": "orifice",
    "ostium": "opening", "margo": "margin", "iecur": "liver", "jecur": "liver", "labium": "lip",
    "labia": "lips", "crista": "crest", "incisura": "notch", "spina": "spine",
    "fissura": "fissure", "cornua": "horns", "corpora": "bodies",
}
_LATIN_ADJECTIVES = {
    "dexter": "right", "dextra": "right", "dextrum": "right", "dextri": "right", "dextrae": "right",
    "sinister": "left", "sinistra": "left", "sinistrum": "left", "sinistri": "left",
    "sinistrae": "left", "superius": "superior", "inferius": "inferior", "anterius": "anterior",
    "posterius": "posterior", "medius": "middle", "media": "middle",
    "magnus": "great", "magna": "great", "longus": "long", "longa": "long", "brevis": "short",
    "profundus": "deep", "profunda": "deep", "superficialis": "superficial", "internus": "internal",
    "interna": "internal", "internum": "internal", "externus": "external", "externa": "external",
    "externum": "external", "communis": "common", "lateralis": "lateral", "medialis": "medial",
    "transversus": "transverse", "transversa": "transverse", "descendens": "descending",
    "ascendens": "ascending", "sigmoideum": "sigmoid", "sigmoidea": "sigmoid",
    "pulmonalis": "pulmonary", "pulmonales": "pulmonary", "pulmonis": "lung", "pulmonum": "lungs",
    "hepaticus": "hepatic", "hepatica": "hepatic", "hepatis": "liver", "renalis": "renal",
    "renis": "kidney", "lienalis": "splenic", "lienis": "spleen", "splenicus": "splenic",
    "splenica": "splenic", "gastricus": "gastric", "gastrica": "gastric", "cardiacus": "cardiac",
    "cordis": "heart", "cerebri": "brain", "cerebralis": "cerebral", "cerebelli": "cerebellum",
    "coronarius": "coronary", "coronaria": "coronary", "iliacus": "iliac", "iliaca": "iliac",
    "femoralis": "femoral", "femoris": "femur", "subclavia": "subclavian", "subclavius": "subclavian",
    "carotis": "carotid", "jugularis": "jugular", "vertebralis": "vertebral", "vertebrae": "vertebra",
    "thoracicus": "thoracic", "thoracica": "thoracic", "thoracis": "chest", "lumbalis": "lumbar",
    "lumbales": "lumbar", "sacralis": "sacral", "cervicalis": "cervical", "colli": "neck",
    "abdominalis": "abdominal", "abdominis": "abdomen", "mesentericus": "mesenteric",
    "mesenterica": "mesenteric", "portae": "portal", "portalis": "portal", "urinaria": "urinary",
    "biliaris": "biliary", "fellea": "gall", "nasi": "nasal", "nasalis": "nasal", "oralis": "oral",
    "parotidea": "parotid", "submandibularis": "submandibular", "sublingualis": "sublingual",
    "lacrimalis": "lacrimal", "opticus": "optic", "acusticus": "acoustic", "auditiva": "auditory",
    "auditivus": "auditory", "temporalis": "temporal", "frontalis": "frontal",
    "parietalis": "parietal", "occipitalis": "occipital", "spinalis": "spinal",
    "nervosum": "nervous", "nervosus": "nervous", "centrale": "central", "centralis": "central",
    "periphericum": "peripheral", "grisea": "grey", "intervertebralis": "intervertebral",
    "costalis": "costal", "mammaria": "mammary", "uterina": "uterine", "uteri": "uterus",
    "ovarica": "ovarian", "seminalis": "seminal", "seminales": "seminal", "accessorius": "accessory",
    "accessoria": "accessory", "thyroidea": "thyroid", "thyreoidea": "thyroid",
    "suprarenalis": "adrenal", "suprarenales": "adrenal", "pinealis": "pineal", "salivaria": "salivary",
    "salivariae": "salivary", "spuria": "false", "spuriae": "false", "verae": "true",
    "fluctuantes": "floating", "tenue": "small", "crassum": "large", "ani": "anal", "recti": "rectum",
    "trunci": "trunk", "ventriculi": "ventricle", "atrii": "atrium", "vesicae": "bladder",
    "durae": "dura", "matris": "mater", "oesophagi": "oesophagus", "esophagi": "esophagus",
    "duodeni": "duodenum", "pancreatis": "pancreas", "cerebellaris": "cerebellar",
    "lymphaticus": "lymphatic", "lymphatica": "lymphatic", "lymphoidei": "lymph",
    "majus": "greater", "majora": "greater", "minus": "lesser", "minora": "lesser", "humeri": "humerus",
    "ulnae": "ulna", "radii": "radius", "tibiae": "tibia",
    "fibulae": "fibula", "scapulae": "scapula", "claviculae": "clavicle", "sterni": "sternum",
    "cranii": "skull", "mandibulae": "mandible", "maxillae": "maxilla", "prostatae": "prostate",
    "ureteris": "ureter", "urethrae": "urethra", "tracheae": "trachea", "laryngis": "larynx",
    "pharyngis": "pharynx", "linguae": "tongue", "aortae": "aorta", "metacarpi": "metacarpal",
    "metatarsi": "metatarsal", "calcanei": "calcaneus",
}
# Abbreviations of radiotherapy structure names (TG-263 style) and common clinical shorthand.
_ABBREVIATIONS = {
    "nrv": "nerve", "nrvs": "nerves", "glnd": "gland", "glnds": "glands", "musc": "muscle",
    "submand": "submandibular", "cnstr": "constrictor", "constrict": "constrictor", "lns": "lens",
    "brnch": "bronchus", "chism": "chiasm", "cav": "cavity", "ant": "anterior", "post": "posterior",
    "sup": "superior", "inf": "inferior", "lat": "lateral", "ext": "external", "int": "internal",
    "prox": "proximal", "dist": "distal", "lig": "ligament", "ves": "vessel", "art": "artery",
    "vn": "vein", "mid": "middle", "ln": "lymph node",
}
# English relational adjectives and the organ they name ("hepatic segment" = "liver segment").
_ORGAN_ADJECTIVES = {
    "hepatic": "liver", "renal": "kidney", "pulmonary": "lung", "cardiac": "heart",
    "gastric": "stomach", "splenic": "spleen", "cerebral": "brain", "vesical": "bladder",
    "colonic": "colon", "duodenal": "duodenum", "ileal": "ileum", "jejunal": "jejunum",
    "oesophageal": "oesophagus", "esophageal": "esophagus", "pancreatic": "pancreas",
    "uterine": "uterus", "ovarian": "ovary", "prostatic": "prostate", "rectal": "rectum",
    "costal": "rib", "vertebral": "vertebra", "sternal": "sternum",
    "nasal": "nose", "oral": "mouth", "ocular": "eye", "mammary": "breast", "lingual": "tongue",
    "dental": "tooth", "labial": "lip", "tracheal": "trachea", "laryngeal": "larynx",
    "pharyngeal": "pharynx", "thymic": "thymus", "biliary": "bile", "bronchial": "bronchus",
    "aortic": "aorta", "pleural": "pleura", "pericardial": "pericardium", "peritoneal": "peritoneum",
    "atrial": "atrium", "ventricular": "ventricle", "osseous": "bone", "bony": "bone",
    "lienal": "spleen", "nephric": "kidney", "cerebellar": "cerebellum", "hippocampal": "hippocampus",
    "thyroidal": "thyroid", "adrenal": "adrenal gland", "suprarenal": "adrenal gland",
    "mandibular": "mandible", "femoral": "femur", "humeral": "humerus", "tibial": "tibia",
    "fibular": "fibula", "sacral": "sacrum", "coccygeal": "coccyx", "cholecystic": "gallbladder",
    "appendiceal": "appendix", "cecal": "cecum", "caecal": "caecum", "sigmoidal": "sigmoid colon",
    "esophagogastric": "gastroesophageal junction", "myocardial": "myocardium", "splenial": "spleen",
    "glandular": "gland", "muscular": "muscle", "vascular": "vessel", "venous": "vein",
    "arterial": "artery", "skeletal": "skeleton", "hypophyseal": "pituitary gland",
    "pituitary": "pituitary gland", "parotid": "parotid gland", "testicular": "testis",
}
# Latin ordinals as the numbers the tree's terms use, beside a rib or a vertebra only ("costa
# secunda sinistra" = left rib 2, "vertebra cervicalis prima" = C1); elsewhere they are names
# ("musculus peroneus tertius").
_LATIN_ORDINALS = {f"{stem}{ending}": str(n) for n, stem in enumerate(
    ("prim", "secund", "terti", "quart", "quint", "sext", "septim", "octav", "non", "decim", "undecim",
     "duodecim"), start=1) for ending in ("us", "a", "um")}
_ORDINAL_NOUNS = frozenset(("costa", "costae", "vertebra", "vertebrae"))
_LATIN = {**_LATIN_NOUNS, **_LATIN_ADJECTIVES}
# Latin forms that are also English words: they never decide that a phrase is Latin.
_ENGLISH_TOO = frozenset(("vertebrae", "media", "plexus", "ganglion", "sinus", "fossa", "lamina",
                          "cerebrum", "prostata", "costae", "processus", "meatus", "hilus"))
# Latin adjective and noun endings and their English forms, most specific first ("mitralis" ->
# "mitral", "xiphoideus" -> "xiphoid", "calcarinus" -> "calcarine", "transversum" -> "transverse").
# They make candidates only: :func:`latin_endings` keeps one that is a word of the vocabulary given.
LATIN_ENDINGS: tuple[tuple[str, str], ...] = (
    ("oideus", "oid"), ("oidea", "oid"), ("oideum", "oid"), ("oidei", "oid"), ("oideae", "oid"),
    ("alis", "al"), ("ales", "al"), ("ale", "al"), ("alia", "al"),
    ("aris", "ar"), ("ares", "ar"), ("are", "ar"),
    ("icus", "ic"), ("ica", "ic"), ("icum", "ic"), ("ici", "ic"), ("icae", "ic"),
    ("atus", "ate"), ("ata", "ate"), ("atum", "ate"), ("ati", "ate"), ("atae", "ate"),
    ("osus", "ous"), ("osa", "ous"), ("osum", "ous"),
    ("ivus", "ive"), ("iva", "ive"), ("ivum", "ive"),
    ("eus", "eal"), ("ea", "eal"), ("eum", "eal"),
    ("us", ""), ("um", ""), ("ae", ""), ("is", ""), ("es", ""), ("a", ""), ("i", ""),
    ("us", "e"), ("um", "e"), ("ae", "e"), ("is", "e"), ("a", "e"), ("i", "e"),
)
# Finger and toe names as digit numbers (hand and foot digits counted from the thumb / big toe),
# the phalanx parts as epiphyses; applied in order to lower-case words.
_NTH = r"(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|[1-5])"
_NUMBER = {"first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "1st": "1", "2nd": "2",
           "3rd": "3", "4th": "4", "5th": "5"}


def _nth(limb: str):
    return lambda m: f"{limb} digit {_NUMBER.get(m.group(1), m.group(1))}"


_DIGIT_WORD = re.compile(r"finger|toe|thumb|hallux|pinky|digit|phalanx")
_DIGIT_PHRASES: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(r"\bthumb\b"), "manual digit 1"),
    (re.compile(r"\bindex finger\b"), "manual digit 2"),
    (re.compile(r"\bmiddle finger\b"), "manual digit 3"),
    (re.compile(r"\bring finger\b"), "manual digit 4"),
    (re.compile(r"\b(?:little|small|fifth) finger\b|\bpinky\b"), "manual digit 5"),
    (re.compile(r"\b(?:big|great) toe\b|\bhallux\b"), "pedal digit 1"),
    (re.compile(r"\b(?:little|small) toe\b"), "pedal digit 5"),
    (re.compile(rf"\b{_NTH} (?:finger|digit of (?:the )?hand|hand digit)\b"), _nth("manual")),
    (re.compile(rf"\b{_NTH} (?:toe|digit of (?:the )?foot|foot digit)\b"), _nth("pedal")),
    (re.compile(r"\b(?:finger|hand digit|forelimb digit|fore limb digit)\b"), "manual digit"),
    (re.compile(r"\b(?:toe|foot digit|hindlimb digit|hind limb digit)\b"), "pedal digit"),
    (re.compile(r"\bintermediate phalanx\b"), "middle phalanx"),
    (re.compile(r"\b(?:base|basal epiphysis) of (?:the )?((?:\w+ )?phalanx)\b"), r"proximal epiphysis of \1"),
    (re.compile(r"\bhead of (?:the )?((?:\w+ )?phalanx)\b"), r"distal epiphysis of \1"),
)
# Spinal level codes: C cervical, T / Th / D (dorsal) thoracic, L lumbar, S sacral.
_SPINE_CODE = re.compile(r"(c|th|t|d|l|s)(\d{1,2})")
_SPINE_REGIONS = {"c": "cervical", "t": "thoracic", "th": "thoracic", "d": "thoracic", "l": "lumbar",
                  "s": "sacral"}
_LEVEL_VERTEBRA = frozenset(("", "vertebra", "vertebral body", "body", "level", "vertebral level"))
_LEVEL_SEGMENT = frozenset(("segment", "cord segment", "spinal cord segment", "spinal segment",
                            "cord level", "spinal cord level"))
_CAMEL = re.compile(r"(?<=[a-z]{2})(?=[A-Z])")
# A TG-263 structure name: parts joined by underscores, no spaces ("A_Mesenteric_S", "V_Venacava_I").
_TG263 = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")
# Its one-letter parts: a vessel prefix, and a level suffix before the side (if any).
_TG263_PREFIX = {"a": "artery", "v": "vein"}
_TG263_LEVEL = {"s": "superior", "i": "inferior", "m": "middle"}
_TG263_SIDE = {"l", "r"}
_VESSEL_WORDS = frozenset(("vena", "cava", "aorta", "artery", "arteries", "vein", "veins", "trunk"))
_WORDS = re.compile(r"[a-z0-9]+")


def split_camel(text: str) -> str:
    """Insert spaces at lower-to-upper case changes after two lower-case letters
    ("BuccalMucosa" -> "Buccal Mucosa"); "pNET", "LCx" and "IVb" are left alone."""
    return _CAMEL.sub(" ", text)


def words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` after splitting CamelCase."""
    folded = unicodedata.normalize("NFKD", split_camel(text)).encode("ascii", "ignore").decode("ascii")
    return _WORDS.findall(folded.lower())


def english(text: str) -> str:
    """Plain-English, lower-case wording of ``text`` (see the module docstring).

    Args:
        text: any string.

    Returns:
        The rewritten words joined by spaces; equal to the lower-cased words of ``text`` when
        nothing needed rewriting.
    """
    ws = words(text)
    ordinals = _LATIN_ORDINALS if _ORDINAL_NOUNS.intersection(ws) else {}
    out = [_LATIN.get(w) or ordinals.get(w) or _ABBREVIATIONS.get(w) or w for w in ws]
    # Latin puts the noun first and its adjectives and genitives after it: read it backwards.
    last = ws[-1] if ws else ""
    adjective = last in _LATIN_ADJECTIVES or last in ordinals
    if len(ws) > 1 and adjective and (last not in _ENGLISH_TOO or ws[0] in _LATIN_NOUNS):
        out = out[::-1]
    return " ".join(out)


def digit_reading(text: str) -> str | None:
    """Fingers and toes named as the tree names them, when that changes the words.

    "base of proximal phalanx of index finger" -> "proximal epiphysis of proximal phalanx of
    manual digit 2"; "3rd toe intermediate phalanx" -> "pedal digit 3 middle phalanx";
    "foot digit 4" -> "pedal digit 4". Hand and foot digits are numbered from the thumb / big toe.
    """
    return _digits(" ".join(words(text)))


def _digits(plain: str) -> str | None:
    """:func:`digit_reading` of ``plain``, lower-case words joined by spaces."""
    if not _DIGIT_WORD.search(plain):
        return None
    out = plain
    for pattern, repl in _DIGIT_PHRASES:
        out = pattern.sub(repl, out)
    return out if out != plain else None


def spine_level(ws: list[str]) -> str | None:
    """A spinal level code standing for its vertebra or cord segment, spelled out.

    "C5", "Th12", "D6" (dorsal), "L4 vertebra", "S2 level" -> "cervical vertebra 5", ...;
    "L1 segment", "T4 cord segment" -> "1 lumbar spinal cord segment". Only a code alone or
    with these nouns: "C5-C6 disc" and "right S1" (a lung segment) are left alone.
    """
    code = _SPINE_CODE.fullmatch(ws[0]) if ws else None
    if code is None:
        return None
    region, rest = _SPINE_REGIONS[code.group(1)], " ".join(ws[1:])
    if rest in _LEVEL_VERTEBRA:
        return f"{region} vertebra {code.group(2)}"
    if rest in _LEVEL_SEGMENT:
        return f"{code.group(2)} {region} spinal cord segment"
    return None


def tg263_reading(text: str) -> str | None:
    """A TG-263 structure name with its one-letter parts spelled out, or ``None``.

    The vessel prefix becomes the head noun ("A_Mesenteric_S" -> "superior mesenteric artery"),
    dropped where the name already says it ("V_Venacava_I" -> "inferior vena cava"); a level
    suffix S / I / M becomes superior / inferior / middle ("Musc_Constrict_S"), also before a side
    suffix ("Musc_Constrict_I_L"). Only the underscore form is read: in free text "a", "i" and
    "s" are words, and the prompt parse drops them (read this from the raw prompt).
    """
    if not _TG263.fullmatch(text.strip()):
        return None
    parts = [p.lower() for p in text.strip().split("_")]
    side = [parts.pop()] if len(parts) > 2 and parts[-1] in _TG263_SIDE else []
    level = [_TG263_LEVEL[parts.pop()]] if len(parts) > 1 and parts[-1] in _TG263_LEVEL else []
    head = [_TG263_PREFIX[parts.pop(0)]] if len(parts) > 1 and parts[0] in _TG263_PREFIX else []
    rest = ["vena cava" if p == "venacava" else p for p in parts]
    if head and _VESSEL_WORDS.intersection(" ".join(rest).split()):
        head = []
    if not (level or head or rest != parts):
        return None
    return " ".join(level + rest + head + side)


def english_reading(text: str, max_words: int = 6) -> str | None:
    """:func:`spine_level`, :func:`digit_reading` (up to twice ``max_words`` words) or
    :func:`english` of a term of at most ``max_words`` words, when it changes a word or the
    order, else ``None`` (sentences are left as written)."""
    ws = words(text)
    written = " ".join(ws)
    level = spine_level(ws) or (_digits(written) if len(ws) <= 2 * max_words else None)
    if level:
        return level
    if len(ws) > max_words:
        return None
    plain = english(text)
    return plain if plain and plain != written else None


def organ_reading(text: str) -> str | None:
    """:func:`english` with organ adjectives as nouns ("hepatic segment IVb" -> "liver segment
    ivb"), when that changes a word; for order-free lexical matching only."""
    ws = english(text).split()
    out = [_ORGAN_ADJECTIVES.get(w, w) for w in ws]
    return " ".join(out) if out != ws else None


def latin_endings(ws: list[str], vocabulary: frozenset[str] | set[str]) -> list[str] | None:
    """Each word of ``ws`` read through the Latin word list, else through :data:`LATIN_ENDINGS`
    into a word of ``vocabulary`` ("canalis analis" -> "canal anal"); ``None`` when a word has no
    such reading or nothing changed. Word order is kept: order-free matching reads the result."""
    out = []
    for w in ws:
        if w in _LATIN:
            out.append(_LATIN[w])
            continue
        if w in vocabulary:
            out.append(w)
            continue
        stem = next((w[:len(w) - len(end)] + eng for end, eng in LATIN_ENDINGS
                     if w.endswith(end) and len(w) - len(end) >= 3
                     and w[:len(w) - len(end)] + eng in vocabulary), None)
        if stem is None:
            return None
        out.append(stem)
    return out if out != ws else None
