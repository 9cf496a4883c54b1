"""One-line command-line errors with a "did you mean" hint, and a quiet terminal by default.

Every ``sat`` command's argparse errors go through :func:`parser_error`: one line (no usage
block), naming the nearest valid command, choice or option when one is close, and exit code 2
through the dispatcher (:class:`sat.errors.InputError`). :func:`quiet_third_party` silences
progress bars and warnings of other libraries (transformers, huggingface_hub, highdicom, pydicom)
unless ``--verbose`` is given.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator

from sat.errors import InputError

_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_UNKNOWN = re.compile(r"unrecognized arguments: (.*)")
_THIRD_PARTY = ("transformers", "huggingface_hub", "highdicom", "pydicom", "sentence_transformers")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest ``word`` (difflib ratio >= 0.6), or ``None``."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """Option strings of ``parser`` and of its sub-commands (unknown options surface at the top)."""
    out = []
    for action in parser._actions:
        out += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out += _options(sub)
    return list(dict.fromkeys(out))


def with_hint(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """``message`` plus ``; did you mean X?`` for an invalid choice or an unknown option."""
    m = _CHOICE.search(message)
    if m:
        hit = closest(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        return f"{message}; did you mean {hit!r}?" if hit else message
    m = _UNKNOWN.search(message)
    if m and parser is not None:
        options = _options(parser)
        hints = [closest(w.split("=")[0], options) for w in m.group(1).split() if w.startswith("-")]
        hints = [h for h in hints if h]
        if hints:
            return f"{message}; did you mean {', '.join(hints)}?"
    return message


def parser_error(parser: argparse.ArgumentParser, message: str):
    """Raise :class:`InputError` with ``message`` (and a hint); replaces ``ArgumentParser.error``."""
    raise InputError(f"{with_hint(message, parser)} (see '{parser.prog} --help')")


_RST_ROLE = re.compile(r":(?:class|func|mod|meth|attr|data|obj):`~?([^`]*)`")


def plain_text(text: str) -> str:
    """Sphinx markup from docstrings made readable: ``:class:`~a.B``` -> ``B``, double backticks dropped."""
    text = _RST_ROLE.sub(lambda m: m.group(1).split(".")[-1] if "~" in m.group(0) else m.group(1), text)
    return text.replace("``", "")


def _plain_help(self, original=argparse.ArgumentParser.format_help) -> str:
    return plain_text(original(self))


@contextlib.contextmanager
def one_line_parser_errors() -> Iterator[None]:
    """While active, every plain argparse parser reports errors through :func:`parser_error` and
    prints ``--help`` without Sphinx markup (module docstrings serve as descriptions)."""
    cls = argparse.ArgumentParser
    original = cls.error, cls.format_help
    cls.error, cls.format_help = parser_error, _plain_help
    try:
        yield
    finally:
        cls.error, cls.format_help = original


def quiet_third_party(verbose: bool) -> None:
    """Silence other libraries' progress bars and warnings (before they are imported) unless verbose."""
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers reads it at import
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in _THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")


def add_extensions(subparsers, extensions) -> dict:
    """Add the subcommands of harness ``extensions`` to a core command's ``subparsers``.

    Each extension module lists ``SUBCOMMANDS = [(name, help, add_arguments, run), ...]``; the
    ``sat`` dispatcher imports them (``sat.cli.EXTENSIONS``) and hands them to the core command,
    so core modules never import the harness. Returns ``{name: run}``.
    """
    handlers = {}
    for module in extensions:
        for name, help_, add_arguments, run in module.SUBCOMMANDS:
            add_arguments(subparsers.add_parser(name, help=help_))
            handlers[name] = run
    return handlers
