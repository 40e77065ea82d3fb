"""Issue 11: names that differ only by normalisation, invisible characters, confusable scripts or
spaces are one name (functions/routes/logic/names.py); control characters are refused."""

from __future__ import annotations

import pytest

from functions.routes.logic.names import InvalidName, display_name, name_key


def fullwidth(text: str) -> str:
    """ASCII as its fullwidth forms (U+FF01..U+FF5E), spaces as the ideographic space."""
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) for ch in text)


# Each pair looks the same to a person; the second is what an adversary registers.
LOOK_ALIKES = [
    ("Acme Bank", fullwidth("Acme Bank")),  # fullwidth letters and ideographic space (NFKC)
    ("Café Pay", "Cafe\u0301 Pay"),  # a combining accent instead of the precomposed letter
    ("Ölfonds", "O\u0308lfonds"),
    ("Acme Bank", "Acme\u200b Bank"),  # zero-width space
    ("Acme Bank", "Ac\u200dme Ba\u200cnk"),  # zero-width joiner and non-joiner
    ("Acme Bank", "Ac\u00adme Bank"),  # soft hyphen
    ("Acme Bank", "\ufeffAcme Bank\u2060"),  # BOM, word joiner
    ("Acme Bank", "\u202aAcme Bank\u202c"),  # bidi embedding around it
    ("Acme Bank", "  Acme Bank  "),  # leading and trailing spaces
    ("Acme Bank", "Acme\u00a0\u2003 Bank"),  # no-break and em spaces, a run of them
    ("Acme Bank", "ACME BANK"),  # case, as before
    ("Acme Bank", "\u0410cme Bank"),  # Cyrillic capital A
    ("Acme Bank", "Acm\u0435 B\u0430nk"),  # Cyrillic small e and a
    ("Paypal Treasury", "\u0420\u0430yp\u0430l Tre\u0430sury"),  # Cyrillic Er and a
    ("Bank", "\u0412\u0410NK"),  # Cyrillic Ve and A in capitals
    ("IBM Treasury", "\u0406BM Treasury"),  # Cyrillic I (Ukrainian)
    ("Ovo Energy", "\u039fv\u03bf Energy"),  # Greek omicrons
    ("Sberbank", "Sb\u0435rb\u0430nk"),
    ("ёлка", "ëлка"),  # Cyrillic yo, and a Latin e with diaeresis in its place
]

DIFFERENT = [
    ("Mail Bank", "Mall Bank"),
    ("Bank A", "Bank B"),
    ("Café", "Cafe"),
    ("Acme", "Acme Bank"),
    ("Сбербанк", "Альфа-Банк"),
]


@pytest.mark.parametrize(("plain", "look_alike"), LOOK_ALIKES)
def test_given_names_that_look_the_same_when_keyed_then_they_are_one_name(plain: str, look_alike: str) -> None:
    assert name_key(look_alike) == name_key(plain)
    assert name_key(display_name(look_alike)) == name_key(display_name(plain))


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_given_names_that_differ_when_keyed_then_they_stay_apart(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (fullwidth("Acme Bank"), "Acme Bank"),
        ("Cafe\u0301 Pay", "Café Pay"),
        ("Acme\u200b Ba\u00adnk", "Acme Bank"),
        ("\u202aAcme Bank\u202c", "Acme Bank"),
        ("  Acme \u00a0 Bank  ", "Acme Bank"),
        ("\u0410cme", "\u0410cme"),  # another script is kept as written; only the key folds it
        ("ﬁnance", "finance"),  # a ligature
    ],
)
def test_given_a_name_when_normalised_then_it_is_stored_as_people_read_it(raw: str, shown: str) -> None:
    assert display_name(raw) == shown
    assert display_name(display_name(raw)) == display_name(raw)  # idempotent: stored names stay as they are


@pytest.mark.parametrize(
    "raw",
    [
        "Acme\x00Bank",  # NUL
        "Acme\tBank",
        "Acme\nBank",
        "Acme\rBank",
        "Acme\x1bBank",  # ESC
        "Acme\x7fBank",  # DEL
        "Acme\x85Bank",  # NEL (C1 control)
        "Acme\u2028Bank",  # line separator
        "Acme\u2029Bank",  # paragraph separator
        "Acme\ud800Bank",  # an unpaired surrogate (JSON can carry one)
    ],
)
def test_given_a_name_with_control_characters_when_normalised_then_it_is_refused(raw: str) -> None:
    with pytest.raises(InvalidName) as refused:
        display_name(raw)
    assert "U+" in str(refused.value)


@pytest.mark.parametrize("raw", ["", "   ", "\u200b\u200d", "\u00a0\u3000", "x" * 256])
def test_given_a_name_empty_once_normalised_or_too_long_when_normalised_then_it_is_refused(raw: str) -> None:
    with pytest.raises(InvalidName):
        display_name(raw)


@pytest.mark.parametrize("name", ["Acme Bank", "Treasury-2 (EU)", "a.b_c/d", "MIXED case 42", "x" * 255])
def test_given_an_ascii_name_when_keyed_then_the_key_is_its_lower_case_as_before(name: str) -> None:
    # Guards written before normalisation were keyed by the lower-cased name: they still hold.
    assert name_key(name) == name.lower()


def test_given_a_stored_name_with_a_control_character_when_keyed_then_it_is_keyed_not_refused() -> None:
    # Names stored before refusals existed must still be found (and freed) by their key.
    assert name_key("Old\tName") == "old name"
