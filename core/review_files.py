"""Files of reviews: reading them (with their labels when a CSV has some), saving predictions, and what a batch
came to (label counts, and accuracy against the file's own labels)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import PredictError
from core.predict import Prediction


@dataclass(frozen=True)
class ReviewFile:
    """The reviews of a file, their labels when it has a label column (a CSV), and how many blank lines it had."""

    texts: list[str]
    labels: list[str] | None
    blanks: int


def read_reviews(path: str | Path) -> tuple[list[str], int]:
    """Reviews from a .txt (one per line) or .csv (a text/review/... column); returns (texts, blanks skipped)."""
    reviews = read_review_file(path)
    return reviews.texts, reviews.blanks


def trained_text_columns(model_dir: str | Path | None) -> list[str]:
    """The text columns the run of a model folder was trained on (`--text-columns`), or [] when it named none."""
    import json

    if model_dir is None:
        return []
    for folder in (Path(model_dir), Path(model_dir).parent):
        try:
            record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            columns = record.get("config", {}).get("text_columns") or []
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(columns, list) and all(isinstance(c, str) for c in columns):
            return list(columns)
    return []


def read_review_file(path: str | Path, text_columns: list[str] | tuple[str, ...] = ()) -> ReviewFile:
    """Reviews from a .txt (one per line) or .csv (a text/review/... column, and a label column if there is one).

    A CSV's reviews are read as training read them: the `text_columns` the model was trained on when the file has
    them, else title + content joined when it has both (the default dataset's shape), else the first text-like
    column. The encoding is detected (UTF-8, a BOM, else charset-normalizer's guess); binary files are refused.
    """
    import io

    from core.data.clean import LABEL_CANDIDATES, TEXT_CANDIDATES, join_text
    from core.textfile import NotText, read_text

    path = Path(path).expanduser()
    if path.is_dir():
        raise PredictError(f"{path} is a folder; give a .txt (one review per line) or .csv file of reviews")
    if not path.is_file():
        raise PredictError(f"file not found: {path}")
    try:
        text = read_text(path).text
    except NotText as exc:
        raise PredictError(f"{exc}; give a .txt (one review per line) or .csv file of reviews") from None
    except OSError as exc:
        raise PredictError(f"cannot read {path}: {exc.strerror or exc}") from None
    labels: list[str] | None = None
    if path.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        fields = reader.fieldnames or []
        lower = {f.lower(): f for f in fields}
        if text_columns and all(c in fields for c in text_columns):
            columns = list(text_columns)
        elif "title" in lower and "content" in lower:
            columns = [lower["title"], lower["content"]]
        else:
            column = next((lower[c] for c in TEXT_CANDIDATES if c in lower), fields[0] if len(fields) == 1 else None)
            if column is None:
                raise PredictError(f"no text column in {path.name}; columns are: {', '.join(fields)}; name one 'text'")
            columns = [column]
        label_column = next((lower[c] for c in LABEL_CANDIDATES if c in lower and lower[c] not in columns), None)

        def review(row: dict) -> str:
            return join_text([row.get(c) for c in columns]) if len(columns) > 1 else row.get(columns[0]) or ""

        try:
            rows = [(review(row), row.get(label_column) or "" if label_column else "") for row in reader]
        except csv.Error as exc:
            raise PredictError(f"cannot read {path.name} as CSV: {exc}") from None
    else:
        rows = [(line, "") for line in text.splitlines()]
    kept = [(t, label) for t, label in rows if t.strip()]
    if not kept:
        raise PredictError(f"{path} holds no reviews")
    if label_column_used(rows):
        labels = [label.strip() for _, label in kept]
    return ReviewFile([t for t, _ in kept], labels, len(rows) - len(kept))


def label_column_used(rows: list[tuple[str, str]]) -> bool:
    """Whether every review of a file carries a label (a partly labelled file is not scored)."""
    labelled = [label for t, label in rows if t.strip()]
    return bool(labelled) and all(label.strip() for label in labelled)


def true_labels(raw: list[str], model_labels: list[str]) -> list[str] | None:
    """A file's labels as the model's label names, or None when they cannot be matched to them.

    Labels written as the model's names (any case) match directly; others go through the same mapping as
    training data (0/1, -1/1, pos/neg, star ratings...), whose names must then be the model's.
    """
    import pandas as pd

    from core.data.labels import map_labels
    from core.errors import DatasetError

    by_lower = {name.lower(): name for name in model_labels}
    if all(label.lower() in by_lower for label in raw):
        return [by_lower[label.lower()] for label in raw]
    try:
        ids, mapping = map_labels(pd.Series(raw), "label")
    except DatasetError:
        return None
    if (ids < 0).any():  # neutral star ratings: the model has no class for them
        return None
    names = [by_lower.get(name.lower()) for name in mapping.names]
    if None in names and _polar(mapping.names) and _polar(model_labels):
        names = list(model_labels)  # pos/neg, 0/1, stars... against a negative/positive model: the same two classes
    if None in names:
        return None  # another task's labels
    return [names[i] for i in ids]


def _polar(names: list[str]) -> bool:
    """Two labels that read as negative then positive (neg/pos, bad/good, 0/1, negative/positive...)."""
    from core.data.labels import NEGATIVE_WORDS, POSITIVE_WORDS

    low = [n.lower() for n in names]
    return len(low) == 2 and low[0] in NEGATIVE_WORDS | {"negative"} and low[1] in POSITIVE_WORDS | {"positive"}


def check_save_path(save: str | Path, source: str | Path | None = None, instead: str | None = None) -> Path:
    """Where predictions may be saved; PredictError for a folder, a missing folder, the input file itself, or what
    is no regular file (a device, FIFO, socket, /dev/stdout). A symbolic link is written through: it stays a link
    and its target gets the predictions. `instead`: the other way out the refusal offers ("leave out --save...")."""
    from core.files import NotAFile, write_target

    path = Path(save).expanduser()
    if path.is_dir():
        raise PredictError(f"{save} is a folder; give a file to save to, such as {Path(save) / 'predictions.csv'}")
    if not path.parent.is_dir():
        raise PredictError(f"the folder {path.parent} does not exist; create it or save somewhere else")
    try:
        target = write_target(path)
    except NotAFile as exc:
        raise PredictError(f"{exc}; give a file path to save to" + (f", or {instead}" if instead else "")) from None
    if not target.parent.is_dir():
        raise PredictError(f"{save} is a link to {target}, whose folder does not exist; create it or save somewhere "
                           "else")
    if source is not None and target.exists() and target == Path(source).expanduser().resolve():
        raise PredictError(f"{save} is the file being predicted; save to another file so its reviews are kept")
    return path


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list): `=HYPERLINK(...)`, `+cmd|...`."""


def spreadsheet_safe(text: str) -> str:
    """A text cell that a spreadsheet shows as text: one that would start a formula gets a leading `'`."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_predictions_csv(predictions: list[Prediction], path: str | Path) -> Path:
    """Save predictions as CSV (atomically, through a symbolic link): text, label, confidence, one probability
    column per class, and the true label when the predictions have one (from a labelled file). Text cells that
    would start a spreadsheet formula get a leading `'` (spreadsheet_safe); the numbers are written as numbers."""
    import io

    from core.files import NotAFile, write_text_atomic

    path = Path(path).expanduser()
    names = list(predictions[0].probabilities) if predictions else []
    with_truth = any(p.true_label is not None for p in predictions)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["text", "label", "confidence", *[spreadsheet_safe(f"p_{n}") for n in names],
                     *(["true_label"] if with_truth else [])])
    for p in predictions:
        writer.writerow([spreadsheet_safe(p.text), spreadsheet_safe(p.label), f"{p.confidence:.4f}",
                         *[f"{p.probabilities.get(n, 0.0):.4f}" for n in names],
                         *([spreadsheet_safe(p.true_label or "")] if with_truth else [])])
    try:
        write_text_atomic(path, out.getvalue())
    except NotAFile as exc:
        raise PredictError(f"{exc}; give a file path to save to") from None
    except OSError as exc:
        raise PredictError(f"cannot save predictions to {path}: {exc.strerror or exc}") from None
    return path


@dataclass(frozen=True)
class BatchSummary:
    """What a file of reviews came to: how many were predicted, per-label counts, blanks skipped, speed, and with
    the file's own labels its accuracy and confusion matrix."""

    reviews: int
    counts: dict[str, int]
    blanks: int
    seconds: float
    scores: dict | None = field(default=None)
    """core.training.metrics.evaluate_predictions of the batch against the file's labels, when it had usable ones."""
    label_note: str | None = None
    """Why a labelled file could not be scored, if it could not."""

    @property
    def per_second(self) -> float:
        return self.reviews / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line, e.g. "3 reviews: negative 2 (66.7%), positive 1 (33.3%) · accuracy 66.7% · 250 reviews/s"."""
        share = ", ".join(f"{label} {n} ({n / self.reviews:.1%})" for label, n in self.counts.items()) if self.reviews else ""
        parts = [f"{self.reviews} review{'s' if self.reviews != 1 else ''}" + (f": {share}" if share else "")]
        if self.scores is not None:
            parts.append(f"accuracy {self.scores['accuracy']:.1%} against the file's labels")
        elif self.label_note:
            parts.append(self.label_note)
        if self.blanks:
            parts.append(f"{self.blanks} blank line{'s' if self.blanks != 1 else ''} skipped")
        if self.seconds > 0:
            parts.append(f"{self.per_second:,.0f} reviews/s")
        return " · ".join(parts)


def summarize_batch(predictions: list[Prediction], blanks: int = 0, seconds: float = 0.0,
                    label_names: list[str] | None = None) -> BatchSummary:
    """Count a batch's predictions per label (every name in `label_names` listed, in that order, even at 0), and
    score them against their true labels when every prediction has one."""
    counts: dict[str, int] = dict.fromkeys(label_names or [], 0)
    for p in predictions:
        counts[p.label] = counts.get(p.label, 0) + 1
    scores = None
    if predictions and label_names and all(p.true_label is not None for p in predictions):
        from core.training.metrics import evaluate_predictions

        index = {name: i for i, name in enumerate(label_names)}
        scores = evaluate_predictions([index[p.true_label] for p in predictions], [index[p.label] for p in predictions],
                                      label_names)
    return BatchSummary(len(predictions), counts, blanks, seconds, scores)
