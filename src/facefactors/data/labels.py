"""Canonical expression classes and each dataset's own label codes (DESIGN.md §4).

Every loader maps its dataset's codes onto the canonical names in
:data:`facefactors.constants.CANONICAL_CLASSES`; a dataset's class list is a
subset of those names, always in canonical order, so that index ``i`` means the
same expression in every 7-class model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL, RAFDB_CODES
from facefactors.errors import DataError

# Class sets used by the standard protocols.
BASIC7: tuple[str, ...] = CANONICAL_CLASSES[:7]  # neutral .. anger, no contempt
ALL8: tuple[str, ...] = CANONICAL_CLASSES
CKPLUS6: tuple[str, ...] = ("happy", "sad", "surprise", "fear", "disgust", "anger")
CKPLUS7: tuple[str, ...] = (*CKPLUS6, "contempt")  # the paper's "6 expressions and contempt"

# Spellings found in folder names and CSVs, mapped to canonical names (lower case keys).
ALIASES: dict[str, str] = {
    "angry": "anger",
    "anger": "anger",
    "happiness": "happy",
    "happy": "happy",
    "sadness": "sad",
    "sad": "sad",
    "surprised": "surprise",
    "surprise": "surprise",
    "disgusted": "disgust",
    "disgust": "disgust",
    "fearful": "fear",
    "fear": "fear",
    "neutral": "neutral",
    "contempt": "contempt",
}

# FERPlus fer2013new.csv vote columns, in file order; None marks the non-expression columns.
FERPLUS_VOTE_COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("neutral", "neutral"),
    ("happiness", "happy"),
    ("surprise", "surprise"),
    ("sadness", "sad"),
    ("anger", "anger"),
    ("disgust", "disgust"),
    ("fear", "fear"),
    ("contempt", "contempt"),
    ("unknown", None),
    ("NF", None),
)

# Original FER2013 `emotion` column.
FER2013_CODES: dict[int, str] = {
    0: "anger",
    1: "disgust",
    2: "fear",
    3: "happy",
    4: "sad",
    5: "surprise",
    6: "neutral",
}

# AffectNet `expression` column: 0..7 are expressions, 8..10 are dropped by every protocol.
AFFECTNET_CODES: dict[int, str] = {
    0: "neutral",
    1: "happy",
    2: "sad",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "anger",
    7: "contempt",
}
AFFECTNET_NON_EXPRESSION: dict[int, str] = {8: "none", 9: "uncertain", 10: "non-face"}

# CK+ Emotion/*_emotion.txt codes.
CKPLUS_CODES: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sad",
    7: "surprise",
}

# SFEW 2.0 class folder names (exact spelling of the release).
SFEW_FOLDERS: dict[str, str] = {
    "Angry": "anger",
    "Disgust": "disgust",
    "Fear": "fear",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
    "Surprise": "surprise",
}

__all__ = [
    "AFFECTNET_CODES",
    "AFFECTNET_NON_EXPRESSION",
    "ALIASES",
    "ALL8",
    "BASIC7",
    "CANONICAL_CLASSES",
    "CKPLUS6",
    "CKPLUS7",
    "CKPLUS_CODES",
    "FER2013_CODES",
    "FERPLUS_VOTE_COLUMNS",
    "NEUTRAL",
    "RAFDB_CODES",
    "SFEW_FOLDERS",
    "canonical_order",
    "class_index",
    "decode_code",
    "parse_class_map",
    "resolve_class",
    "resolve_class_name",
]

# A numbering in front of a class name: "1 - Happy", "01_happy", "3.sad", "2) fear".
_NUMBER_PREFIX = re.compile(r"^\s*\d+\s*[-_.):]?\s*")


def resolve_class(text: str, where: str) -> str:
    """Map a class spelling (any case, common aliases) to its canonical name.

    Args:
        text: A class name such as ``"Angry"``, ``"happiness"`` or ``"fear"``.
        where: The file, line or folder the name came from, for the error message.

    Returns:
        The canonical name, e.g. ``"anger"``.

    Raises:
        DataError: The name is not a known expression class.
    """
    name = ALIASES.get(text.strip().lower())
    if name is None:
        known = ", ".join(CANONICAL_CLASSES)
        raise DataError(
            f"{where}: {text!r} is not an expression class (expected one of {known} "
            "or an alias such as angry, happiness, sadness, surprised, disgusted, fearful)."
        )
    return name


def parse_class_map(spec: str | Mapping[str, str] | None, where: str) -> dict[str, str]:
    """A user's class-name map (``"1 - Happy=happy,2 - Sad=sad"`` or a mapping).

    Keys are matched without case or surrounding spaces; values may be aliases.

    Raises:
        DataError: an entry without ``=``, or a target that is not an expression class.
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        pairs = []
        for item in (i for i in spec.split(",") if i.strip()):
            if "=" not in item:
                raise DataError(f"{where}: entry {item.strip()!r} must look like NAME=CLASS.")
            pairs.append(tuple(item.rsplit("=", 1)))
    elif isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        raise DataError(f"{where} must be NAME=CLASS pairs separated by commas, got {spec!r}.")
    return {str(k).strip().lower(): resolve_class(str(v), where) for k, v in pairs}


def resolve_class_name(text: str, where: str, class_map: Mapping[str, str] | None = None) -> str:
    """:func:`resolve_class` for names found in folders and CSVs: a map and numbering too.

    Tried in order: the user's ``class_map`` (lower-case keys, see
    :func:`parse_class_map`), the aliases, then the aliases after a leading
    number (``1 - Happy``, ``01_happy``, ``3.sad``).

    Raises:
        DataError: none of them knows the name (the message suggests a map entry).
    """
    key = text.strip().lower()
    if class_map and key in class_map:
        return class_map[key]
    bare = _NUMBER_PREFIX.sub("", key, count=1)
    name = ALIASES.get(key) or ALIASES.get(bare)
    if name is None:
        raise DataError(
            f"{where}: {text!r} is not an expression class (expected one of "
            f"{', '.join(CANONICAL_CLASSES)}, an alias such as angry, happiness, sadness, or "
            f"either after a number such as '1 - Happy'; or map it with --class-map "
            f"'{text.strip()}=CLASS')."
        )
    return name


def class_index(name: str, classes: tuple[str, ...], where: str = "class list") -> int:
    """Index of a canonical class name in a dataset's class tuple.

    Raises:
        DataError: ``name`` is not in ``classes``.
    """
    try:
        return classes.index(name)
    except ValueError:
        raise DataError(
            f"{where}: class {name!r} is not one of the classes {', '.join(classes)}."
        ) from None


def canonical_order(names: Iterable[str]) -> tuple[str, ...]:
    """Sort canonical names into canonical order, without duplicates.

    Raises:
        DataError: A name is not canonical (pass it through :func:`resolve_class` first).
    """
    unique = set(names)
    bad = sorted(unique - set(CANONICAL_CLASSES))
    if bad:
        raise DataError(f"Class names {bad} are not canonical expression classes.")
    return tuple(c for c in CANONICAL_CLASSES if c in unique)


def decode_code(raw: str, codes: Mapping[int, str], where: str) -> int:
    """Parse an integer label code and check that ``codes`` (or its caller) knows it.

    Accepts ``"3"`` and float spellings of whole numbers such as ``"3.0000000e+00"``
    (CK+ writes its codes that way).

    Args:
        raw: The code as text.
        codes: Known codes; a code outside it raises.
        where: ``"<file> line <n>"`` for the error message.

    Returns:
        The integer code.

    Raises:
        DataError: ``raw`` is not a whole number or not a known code.
    """
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: label {text!r} is not a number.") from None
    if not value.is_integer():
        raise DataError(f"{where}: label {text!r} is not a whole-number code.")
    code = int(value)
    if code not in codes:
        known = ", ".join(f"{k}={v}" for k, v in sorted(codes.items()))
        raise DataError(f"{where}: unknown label code {code} (known codes: {known}).")
    return code
