"""Names people tell apart by eye (clients, gateways): stored normalised, kept unique by a key that
is the same for names that look the same.

`display_name` is what is stored and shown: control characters (Cc), unpaired surrogates (Cs)
and line or paragraph separators (Zl, Zp) are refused; invisible format characters (Cf: zero-width
space and joiners, soft hyphen, bidi controls, BOM) are dropped; then NFKC (fullwidth and other
compatibility forms, precomposed accents), trimmed, with runs of spaces as one.

`name_key` is what uniqueness is decided on: the same cleaning, then case-folded, and each
character outside ASCII replaced by its prototype from Unicode's confusables data (UTS #39,
through the `confusable_homoglyphs` package), so a Cyrillic a (U+0430) or a Greek omicron is
keyed as the Latin letter it looks like. ASCII characters stay themselves (case-folded): names
stored before this module were keyed by their lower-cased text, which is still the key of any
ASCII name without runs of spaces; look-alikes within ASCII ('l' and 'I', 'rn' and 'm') are told
apart, as before.
"""

from __future__ import annotations

import functools
import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class InvalidName(ValueError):
    pass


def _without_format(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _clean(text: str) -> str:
    # Format characters go first: one between a letter and its accent would keep NFKC from
    # composing them.
    return " ".join(unicodedata.normalize("NFKC", _without_format(text)).split())


def display_name(raw: str, *, max_length: int = 255) -> str:
    """The name as stored; InvalidName says why a name cannot be one."""
    refused = sorted({f"U+{ord(ch):04X}" for ch in raw if unicodedata.category(ch) in REFUSED_CATEGORIES})
    if refused:
        raise InvalidName(f"A name cannot contain control characters or line breaks ({', '.join(refused)}).")
    name = _clean(raw)
    if not name or len(name) > max_length:
        raise InvalidName(f"A name is 1 to {max_length} visible characters.")
    return name


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each character that has a prototype, to it. In the package's data a prototype lists every
    character confusable with it, and every other character lists just its prototype; two
    characters that only list each other are one pair, keyed by the smaller."""
    # About 1 MB of data, loaded when a name is first keyed (registrations and renames only).
    from confusable_homoglyphs.confusables import confusables_data

    mapping: dict[str, str] = {}
    for char, homoglyphs in confusables_data.items():
        if char.isascii() or len(homoglyphs) != 1:
            continue
        target = str(homoglyphs[0]["c"])
        back = confusables_data.get(target)
        if back is not None and len(back) == 1 and back[0]["c"] == char:
            target = min(char, target)
        mapping[char] = target
    return mapping


def name_key(name: str) -> str:
    """The uniqueness key of a name (any text: names stored before are keyed too, never refused)."""
    prototypes = _prototypes()

    def prototype(text: str) -> str:
        return "".join(prototypes.get(ch, ch) for ch in text)

    # Prototypes are case-sensitive (Cyrillic capital I, U+0406, is 'l' but its small form is 'i';
    # capital Ve is 'B' but small ve is not 'b') while names are not: of a character's prototype
    # and its case-folded form's, the smaller (ASCII first) is kept.
    decomposed = unicodedata.normalize("NFD", _clean(name))
    folded = "".join(min(prototype(ch), prototype(ch.casefold())).casefold() for ch in decomposed)
    return unicodedata.normalize("NFC", _without_format(folded))
