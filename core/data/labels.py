"""Turn the labels real files contain into class ids with names."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import DatasetError

NEGATIVE_WORDS = {"negative", "neg", "bad", "0", "false", "no"}
POSITIVE_WORDS = {"positive", "pos", "good", "1", "true", "yes"}
ORDERED_WORDS = ["negative", "neg", "bad", "neutral", "neu", "mixed", "positive", "pos", "good"]


@dataclass(frozen=True)
class LabelMapping:
    """How raw label values became class ids."""

    kind: str  # "binary", "stars", "multiclass"
    names: list[str]
    description: str
    dropped_neutral: int = 0


def _as_number(value) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number


def map_labels(raw: pd.Series, column: str, class_names: list[str] | None = None,
               one_class_ok: bool = False) -> tuple[pd.Series, LabelMapping]:
    """Map a label column (no missing values) to integer ids; -1 marks rows to drop (neutral stars).

    `one_class_ok`: a column of one class is scored, not trained on (`evaluate --dataset`): its one value is named
    as a model would name it (1, "pos", "5 stars" -> positive).
    """
    if one_class_ok and not class_names:
        single = _single_class(raw)
        if single is not None:
            return single
    if class_names:  # a hub ClassLabel: ids are already right
        ids = raw.astype(int)
        kind = "binary" if len(class_names) == 2 else "multiclass"
        return ids, LabelMapping(kind, list(class_names), f"class ids with names {', '.join(class_names)}")

    distinct = list(pd.unique(raw))
    numbers = [_as_number(v) for v in distinct]
    _refuse_non_finite(raw, column, distinct, numbers)
    if all(n is not None for n in numbers) and not _all_words(distinct):
        return _map_numeric(raw, column, sorted(set(numbers)))
    polar = _map_polar(raw, distinct)
    if polar is not None:
        return polar
    stars = [_star_rating(v) for v in distinct]
    if all(n is not None for n in stars):  # "4 stars", "5/5", "★★★": ratings written as text
        ids, mapping = _map_numeric(raw.map(dict(zip(distinct, stars))), column, sorted(set(stars)))
        return ids, dataclasses.replace(mapping, description=f"{mapping.description} (ratings written as text)")
    return _map_strings(raw, column)


_STARS = re.compile(r"^([1-5])(?:\.0+)?\s*(?:stars?|/\s*5|out of 5)?$")


def _refuse_non_finite(raw: pd.Series, column: str, distinct: list, numbers: list[float | None]) -> None:
    """DatasetError for labels such as nan or inf: numbers, but no class."""
    bad = [v for v, n in zip(distinct, numbers) if n is not None and not math.isfinite(n)]
    if bad:
        rows = int(raw.isin(bad).sum())
        shown = ", ".join(sorted({str(v).strip() for v in bad}))
        raise DatasetError(f"column '{column}' holds {shown} as the label of {rows} row{'s' if rows != 1 else ''}, "
                           "which is no class; give those rows a label or remove them")


def _canonical(value) -> str:
    """A label as written, with the spellings of one value made equal: 0, "0", 0.0 and "0.0" are "0"."""
    number = _as_number(value)
    if number is not None and math.isfinite(number) and number.is_integer() and not isinstance(value, bool):
        return str(int(number))
    return str(value).strip().lower()


def _map_polar(raw: pd.Series, distinct: list) -> tuple[pd.Series, LabelMapping] | None:
    """Labels that spell negative and positive several ways (0, "0.0", "neg" / 1, "1.0", "pos"; True, "yes" /
    False, "no"), mixed in one column: two classes, not one per spelling. None when the column is not of that kind."""
    spellings = {v: _canonical(v) for v in distinct}
    written = {str(v).strip().lower() for v in distinct}
    if len(written) <= 2 or not set(spellings.values()) <= NEGATIVE_WORDS | POSITIVE_WORDS:
        return None
    negative = sorted({str(v).strip() for v, c in spellings.items() if c in NEGATIVE_WORDS})
    positive = sorted({str(v).strip() for v, c in spellings.items() if c in POSITIVE_WORDS})
    if not negative or not positive:
        return None
    ids = raw.map(lambda v: 1 if _canonical(v) in POSITIVE_WORDS else 0).astype(int)
    desc = f"{', '.join(negative)} -> negative, {', '.join(positive)} -> positive (several spellings of each class)"
    return ids, LabelMapping("binary", ["negative", "positive"], desc)


def _single_class(raw: pd.Series) -> tuple[pd.Series, LabelMapping] | None:
    """Every row's label is one value (however spelled): that class, named; None otherwise."""
    spellings = {_canonical(v) for v in pd.unique(raw)}
    if len(spellings) != 1:
        return None
    (value,) = spellings
    stars = _star_rating(value)
    if value in NEGATIVE_WORDS or (value not in POSITIVE_WORDS and stars is not None and stars <= 2):
        name = "negative"
    elif value in POSITIVE_WORDS or (stars is not None and stars >= 4):  # "1" is positive, "1 star" negative
        name = "positive"
    else:
        name = str(pd.unique(raw)[0]).strip()
    return pd.Series(0, index=raw.index), LabelMapping("single", [name], f"every row is {name}")


def _star_rating(value) -> float | None:
    """1-5 from a star rating written as text ("4 stars", "4.0", "4/5", "4 out of 5", "★★★★"), else None."""
    text = str(value).strip().lower()
    if text and set(text) <= {"★", "☆"}:
        count = text.count("★")
        return float(count) if 1 <= count <= 5 else None
    match = _STARS.match(text)
    return float(match.group(1)) if match else None


def _all_words(values) -> bool:
    """True for string labels such as 'true'/'false' that also parse as numbers."""
    return all(isinstance(v, str) and v.strip().lower() in ("true", "false") for v in values)


def _map_numeric(raw: pd.Series, column: str, values: list[float]) -> tuple[pd.Series, LabelMapping]:
    numbers = raw.map(_as_number)
    if len(values) < 2:
        raise _one_class(column, values)
    if len(values) == 2:
        low, high = values
        ids = (numbers == high).astype(int)
        desc = f"{_fmt(low)} -> negative, {_fmt(high)} -> positive"
        return ids, LabelMapping("binary", ["negative", "positive"], desc)
    if set(values) <= {1.0, 2.0, 3.0, 4.0, 5.0}:
        ids = numbers.map(lambda n: 0 if n <= 2 else (1 if n >= 4 else -1)).astype(int)
        neutral = int((ids == -1).sum())
        if ids[ids >= 0].nunique() < 2:
            raise _one_class(column, values)
        desc = f"star ratings: 1-2 -> negative, 4-5 -> positive, {neutral} rated 3 dropped"
        return ids, LabelMapping("stars", ["negative", "positive"], desc, neutral)
    if all(v.is_integer() for v in values):
        index = {v: i for i, v in enumerate(values)}
        names = [_fmt(v) for v in values]
        return numbers.map(index).astype(int), LabelMapping("multiclass", names, f"{len(names)} classes: {', '.join(names)}")
    raise DatasetError(
        f"column '{column}' holds {len(values)} different non-integer numbers; "
        "choose the label column with --label-column"
    )


def _map_strings(raw: pd.Series, column: str) -> tuple[pd.Series, LabelMapping]:
    text = raw.map(lambda v: str(v).strip().lower())
    distinct = sorted(set(text), key=_word_order)
    if len(distinct) < 2:
        raise _one_class(column, distinct)
    if len(distinct) > 50:
        raise DatasetError(
            f"column '{column}' has {len(distinct)} different values, too many for labels; "
            "choose the label column with --label-column"
        )
    index = {name: i for i, name in enumerate(distinct)}
    kind = "binary" if len(distinct) == 2 else "multiclass"
    desc = ", ".join(f"{n} -> {i}" for n, i in index.items())
    return text.map(index).astype(int), LabelMapping(kind, distinct, desc)


def _word_order(word: str) -> tuple[int, str]:
    """Negative-like names first, positive-like last, anything else alphabetically between."""
    if word in NEGATIVE_WORDS:
        return (0, word)
    if word in POSITIVE_WORDS:
        return (3, word)
    if word in ORDERED_WORDS:
        return (1, word)
    return (2, word)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _one_class(column: str, values) -> DatasetError:
    shown = ", ".join(_fmt(v) if isinstance(v, float) else str(v) for v in values) or "none"
    return DatasetError(
        f"only one label ({shown}) in column '{column}' after cleaning; "
        "a classifier needs at least two classes"
    )
