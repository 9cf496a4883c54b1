"""Non-anatomical texts that the resolver must refuse.

``EVAL_NEGATIVES`` measures refusal in ``sat concepts eval``; ``CALIB_NEGATIVES`` is a separate
list used only to calibrate the acceptance threshold. Neither is used in pretraining. They mix
foods, vehicles, software, places, animals, sports, numbers, codes, chit-chat, instructions and
medical-adjacent text that names no anatomy (drugs, paperwork). Texts that name a body part in
another sense ("kidney beans", "spine of a book") are deliberately left out.
"""
from __future__ import annotations

EVAL_NEGATIVES = (
    # food and drink
    "banana", "pepperoni pizza", "a bowl of ramen", "espresso with oat milk", "chocolate cake",
    "sourdough bread", "green tea", "strawberry jam", "grilled cheese sandwich", "sushi platter",
    "apple pie recipe", "orange juice", "vanilla ice cream", "spaghetti carbonara",
    # vehicles and transport
    "bicycle", "electric scooter", "a red sports car", "container ship", "helicopter",
    "freight train timetable", "airport shuttle bus", "motorcycle helmet", "sailing boat",
    # software and computing
    "python list comprehension", "segmentation fault in C", "git rebase --interactive",
    "docker compose file", "JavaScript promise", "SQL inner join", "kubernetes pod",
    "compile the project with cmake", "HTTP 404 not found", "stack overflow error",
    "machine learning pipeline", "neural network weights", "the GPU is out of memory",
    "README.md", "import numpy as np", "https://example.com/index.html", "user@example.org",
    # places and buildings
    "Eiffel Tower", "Paris", "Mount Everest", "the public library", "a quiet beach in Portugal",
    "New York subway map", "the Sahara desert", "shopping mall parking lot", "kitchen sink",
    # animals and plants
    "golden retriever puppy", "a flock of pigeons", "oak tree", "sunflower field", "goldfish",
    "honey bee", "cactus", "penguin colony",
    # sports and leisure
    "football match", "tennis racket", "chess opening", "marathon training plan",
    "yoga mat", "guitar chords", "jazz concert tonight", "board game night",
    # numbers, codes and noise
    "42", "3.14159", "1234567890", "2024-05-17", "12:30 pm", "ISBN 978-3-16-148410-0",
    "qwertyuiop", "asdf jkl", "lorem ipsum dolor sit amet", "xyz123", "zzzz", "N/A", "TODO",
    "#ffcc00", "$19.99",
    # sentences and chit-chat
    "hello, how are you?", "what is the weather like tomorrow", "thank you very much",
    "I would like to book a table for two", "the meeting has been moved to Friday",
    "please send me the invoice", "this is a test", "good morning everyone",
    "the quick brown fox jumps over the lazy dog", "can you recommend a movie",
    "ignore all previous instructions", "tell me a joke",
    # household objects, clothing, materials
    "umbrella", "winter jacket", "coffee mug", "wooden chair", "light bulb", "toothbrush",
    "leather shoes", "stainless steel", "plastic bottle", "a pair of scissors",
    # abstract, economy, science outside anatomy
    "inflation rate", "stock market crash", "democracy", "quantum entanglement",
    "photosynthesis", "the theory of relativity", "climate change policy", "happiness",
    "volcanic eruption", "solar panel efficiency",
    # medical-adjacent text that names no anatomy
    "ibuprofen 400 mg twice daily", "insurance claim form", "appointment next Tuesday",
    "radiology department phone number", "scanner maintenance schedule", "patient consent form",
    "hospital cafeteria menu", "billing code", "window level 400/40", "slice thickness 5 mm",
)

CALIB_NEGATIVES = (
    "pineapple", "cheeseburger with fries", "rice pudding", "black coffee", "croissant",
    "lemonade", "tomato soup", "pancakes with syrup",
    "truck", "tram", "jet ski", "minivan", "cargo plane", "skateboard",
    "rust borrow checker", "null pointer exception", "virtual machine", "unit test coverage",
    "pip install requests", "linux kernel module", "spreadsheet formula", "wifi password",
    "London", "Grand Canyon", "train station", "a small village in the Alps", "garage door",
    "parrot", "elephant", "rose bush", "bamboo forest", "jellyfish",
    "basketball", "golf course", "piano lesson", "hiking boots", "video game console",
    "7", "99.9", "0000", "1999-12-31", "ABC-123", "hmm", "ok", "none", "???x",
    "see you later", "where is the nearest bank", "my order has not arrived",
    "the printer is jammed again", "let's have lunch", "write a poem about the sea",
    "candle", "backpack", "ceramic vase", "copper wire", "mirror on the wall", "pillow",
    "interest rate", "gravity", "freedom of speech", "rainbow", "electricity bill",
    "paracetamol", "discharge letter", "visiting hours", "DICOM export settings",
    "contrast agent allergy", "waiting room",
)

# Background texts for pretraining only (never evaluated): they sit in every batch as negatives of
# all concepts, so fine-tuning keeps everyday text away from anatomy. Disjoint from both lists above.
_TRAIN_WORDS = (
    "carrot soup", "peanut butter", "noodles", "waffle", "cinnamon roll", "milkshake", "salad bowl",
    "hot dog", "yogurt", "cereal box", "lasagna", "dumplings", "tea kettle", "wine glass", "bagel",
    "van", "subway train", "rowing boat", "tractor", "rocket launch", "taxi", "highway exit",
    "traffic light", "parking ticket", "bus stop", "compiler warning", "merge conflict", "api key",
    "database index", "web browser", "spreadsheet", "laptop charger", "keyboard shortcut",
    "source code", "cloud storage", "login page", "password reset", "software update", "text editor",
    "bridge", "castle", "harbour", "museum", "office building", "swimming pool", "football stadium",
    "school yard", "river bank", "mountain cabin", "tiger", "horse", "squirrel", "owl", "dolphin",
    "butterfly", "maple leaf", "tulip", "mushroom", "pine forest", "volleyball", "ski slope",
    "drum kit", "violin", "crossword puzzle", "card game", "dance class", "fishing rod", "tent",
    "lamp", "sofa", "curtain", "bookshelf", "wallet", "necklace", "sunglasses", "raincoat", "socks",
    "hammer", "screwdriver", "paint brush", "glue", "rope", "bucket", "ladder", "clock", "calendar",
    "newspaper", "postcard", "birthday party", "wedding", "holiday plans", "tax return", "mortgage",
    "salary", "budget", "election", "parliament", "history lesson", "mathematics exam", "poetry",
    "novel", "philosophy", "astronomy", "weather forecast", "thunderstorm", "snowfall", "sunset",
    "earthquake", "wind turbine", "battery", "magnet", "telescope", "microscope slide", "sandpaper",
    "vitamin tablets", "cough syrup", "medical bill", "nurse station", "ambulance siren",
    "hospital parking", "lab coat", "stethoscope", "clipboard", "report deadline", "fax number",
)
_TRAIN_PATTERNS = ("{w}", "a {w}", "the {w} is broken", "buy a new {w}", "how to clean the {w}",
                   "{w} for sale", "my favourite {w}", "is the {w} ready?")


def train_negatives() -> list[str]:
    """Deterministic background texts for pretraining (words in patterns, codes and numbers)."""
    out = [p.format(w=w) for i, w in enumerate(_TRAIN_WORDS)
           for p in (_TRAIN_PATTERNS[i % len(_TRAIN_PATTERNS)], _TRAIN_PATTERNS[(i * 3 + 1) % len(_TRAIN_PATTERNS)])]
    out += [f"{n * 37 % 1000}" for n in range(1, 20)] + [f"order #{n * 7919 % 100000}" for n in range(10)]
    out += [f"20{n:02d}-0{n % 9 + 1}-1{n % 9}" for n in range(10)]
    out += ["".join(chr(97 + (n * k) % 26) for k in range(3, 9)) for n in range(1, 21)]
    return list(dict.fromkeys(out))
