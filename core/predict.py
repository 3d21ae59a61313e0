"""Predict sentiment with a saved model: from a run folder or a model folder."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelError, PredictError
from core.runs import layout


@dataclass(frozen=True)
class Prediction:
    """One review's predicted label, its softmax confidence, and every class's probability."""

    text: str
    label: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict:
        return {"text": self.text, "label": self.label, "confidence": self.confidence, "probabilities": self.probabilities}


def model_dir_of(path: str | Path) -> Path:
    """The model folder of a run folder, or `path` itself when it is a model folder."""
    path = Path(path).expanduser()
    if (path / layout.MODEL / "config.json").exists():
        return path / layout.MODEL
    if (path / "config.json").exists() and not (path / layout.STATUS).exists():
        return path
    if (path / layout.STATUS).exists():
        raise ModelError(f"run {path.name} has no saved model (it did not finish); pick a finished run")
    if not path.exists():
        raise ModelError(f"no run or model folder at {path}")
    raise ModelError(f"{path} is neither a run folder nor a model folder (no config.json)")


class Predictor:
    """Loads a classifier once and predicts batches on the best available device."""

    def __init__(self, path: str | Path, device: str | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from core.training.logs import capture_library_logs
        from core.training.model import resolve_device, serving_max_length

        self.model_dir = model_dir_of(path)
        if not any((self.model_dir / f).exists() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
            raise ModelError(f"no tokenizer in {self.model_dir}; save one with tokenizer.save_pretrained there")
        try:
            with capture_library_logs():  # no progress bars or warnings on the user's terminal
                self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), trust_remote_code=False)
                self.model = AutoModelForSequenceClassification.from_pretrained(
                    str(self.model_dir), trust_remote_code=False
                )
        except Exception as exc:  # OSError, ValueError, a SafetensorError for damaged weights...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the model in {self.model_dir}: {first}") from None
        self.device = torch.device(resolve_device(device or "auto"))
        self.model.to(self.device).eval()
        config = self.model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]
        self.max_length = serving_max_length(self.model_dir, self.tokenizer, config)

    def predict(self, texts: list[str] | str, batch_size: int = 32,
                on_progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """Predictions for `texts`, in order; an empty text is an error. `on_progress(done, total)` follows long lists."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = [_valid_text(t) for t in texts]
        cleaned = [" ".join(t.split()) for t in texts]
        for i, text in enumerate(cleaned):
            if not text:
                where = "" if len(cleaned) == 1 else f" (text {i + 1})"
                raise PredictError(f"the review is empty{where}; type some text to predict")
        # Batches of similar length pad less; results go back into input order.
        order = sorted(range(len(cleaned)), key=lambda i: len(cleaned[i]))
        results: list[Prediction | None] = [None] * len(cleaned)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = self.tokenizer([cleaned[i] for i in idx], truncation=True, max_length=self.max_length,
                                     padding=True, return_tensors="pt").to(self.device)
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().tolist()
                for i, row in zip(idx, probs):
                    best = max(range(len(row)), key=row.__getitem__)
                    results[i] = Prediction(
                        texts[i], self.label_names[best], row[best], dict(zip(self.label_names, row))
                    )
                if on_progress is not None:
                    on_progress(min(start + batch_size, len(order)), len(order))
        return results  # type: ignore[return-value]


def _valid_text(text) -> str:
    """`text` with lone surrogates (undecodable command-line bytes, broken JSON) as replacement characters."""
    text = str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")  # bytes Python could not decode come back as they were
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def read_reviews(path: str | Path) -> tuple[list[str], int]:
    """Reviews from a .txt (one per line) or .csv (a text/review/... column); returns (texts, blanks skipped).

    The encoding is detected (UTF-8, a BOM, else charset-normalizer's guess); binary files are refused.
    """
    import io

    from core.data.clean import TEXT_CANDIDATES
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
    if path.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        fields = reader.fieldnames or []
        lower = {f.lower(): f for f in fields}
        column = next((lower[c] for c in TEXT_CANDIDATES if c in lower), fields[0] if len(fields) == 1 else None)
        if column is None:
            raise PredictError(f"no text column in {path.name}; columns are: {', '.join(fields)}; name one 'text'")
        try:
            raw = [row.get(column) or "" for row in reader]
        except csv.Error as exc:
            raise PredictError(f"cannot read {path.name} as CSV: {exc}") from None
    else:
        raw = text.splitlines()
    texts = [t for t in raw if t.strip()]
    if not texts:
        raise PredictError(f"{path} holds no reviews")
    return texts, len(raw) - len(texts)


def check_save_path(save: str | Path, source: str | Path | None = None) -> Path:
    """Where predictions may be saved; PredictError for a folder, a missing folder, or the input file itself."""
    path = Path(save).expanduser()
    if path.is_dir():
        raise PredictError(f"{save} is a folder; give a file to save to, such as {Path(save) / 'predictions.csv'}")
    if not path.parent.is_dir():
        raise PredictError(f"the folder {path.parent} does not exist; create it or save somewhere else")
    if source is not None and path.exists() and path.resolve() == Path(source).expanduser().resolve():
        raise PredictError(f"{save} is the file being predicted; save to another file so its reviews are kept")
    return path


def write_predictions_csv(predictions: list[Prediction], path: str | Path) -> Path:
    """Save predictions as CSV (atomically): text, label, confidence, then one probability column per class."""
    import io

    from core.files import write_text_atomic

    path = Path(path).expanduser()
    names = list(predictions[0].probabilities) if predictions else []
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["text", "label", "confidence", *[f"p_{n}" for n in names]])
    for p in predictions:
        writer.writerow([p.text, p.label, f"{p.confidence:.4f}", *[f"{p.probabilities[n]:.4f}" for n in names]])
    try:
        write_text_atomic(path, out.getvalue())
    except OSError as exc:
        raise PredictError(f"cannot save predictions to {path}: {exc.strerror or exc}") from None
    return path


@dataclass(frozen=True)
class BatchSummary:
    """What a file of reviews came to: how many were predicted, per-label counts, blanks skipped, speed."""

    reviews: int
    counts: dict[str, int]
    blanks: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.reviews / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line, e.g. "3 reviews: negative 2 (66.7%), positive 1 (33.3%) · 1 blank line skipped · 250 reviews/s"."""
        share = ", ".join(f"{label} {n} ({n / self.reviews:.1%})" for label, n in self.counts.items()) if self.reviews else ""
        parts = [f"{self.reviews} review{'s' if self.reviews != 1 else ''}" + (f": {share}" if share else "")]
        if self.blanks:
            parts.append(f"{self.blanks} blank line{'s' if self.blanks != 1 else ''} skipped")
        if self.seconds > 0:
            parts.append(f"{self.per_second:,.0f} reviews/s")
        return " · ".join(parts)


def summarize_batch(predictions: list[Prediction], blanks: int = 0, seconds: float = 0.0,
                    label_names: list[str] | None = None) -> BatchSummary:
    """Count a batch's predictions per label (every name in `label_names` listed, in that order, even at 0)."""
    counts: dict[str, int] = dict.fromkeys(label_names or [], 0)
    for p in predictions:
        counts[p.label] = counts.get(p.label, 0) + 1
    return BatchSummary(len(predictions), counts, blanks, seconds)
