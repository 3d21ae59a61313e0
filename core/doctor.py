"""The data doctor: the reviews of a run's data whose labels look wrong, that the model never settles on, and that
are (near) copies of each other, a test or validation review copying a training one (a leak) above all.

- `label_error`, validation and test reviews: Cleanlab's confident learning on the run's out-of-sample
  probabilities (the kept model never trained on these reviews).
- `label_error`, training reviews: the model trained on them, so its final probabilities are in-sample and
  over-confident; confident learning would miss most errors. By default, the area under the margin instead (Pleiss
  et al. 2020): the label's probability minus the strongest other label's, averaged over the epochs as recorded
  while training (core.training.dynamics). A review whose label the model keeps contradicting while it learns from
  it (a negative mean margin) is most likely mislabelled. With `folds` (core.folds), K fold models give every
  training review an out-of-sample probability, and confident learning ranks all reviews on that one scale.
- `ambiguous`: a training review whose label's probability swings across epochs (dataset cartography's
  variability, Swayamdipta et al. 2020) and ends near neither label.
- `near_duplicate` / `leak`: character n-gram TF-IDF vectors (scikit-learn) with a cosine similarity of at least
  NEAR; exact copies were already dropped by cleaning. A leak is a validation or test review close to a training
  review; the test accuracy is recomputed without the leaked test reviews.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import RunError

AMBIGUOUS_VARIABILITY = 0.2
KINDS = ("label_error", "ambiguous", "near_duplicate", "leak")


@dataclass(frozen=True)
class Finding:
    split: str
    row: int
    """The review's row in the data file (1 = the first row under the header)."""
    text: str
    label: str
    suggested_label: str | None
    score: float
    """0 to 1: how suspicious (the ranking)."""
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    test_accuracy: float | None = None
    test_accuracy_without_leaks: float | None = None
    leaked_test_rows: int = 0
    train_rows: list[int] = field(default_factory=list)
    """The data rows of the training split, in the order its dynamics were recorded."""


def diagnose(run_path: str | Path, batch_size: int = 64, folds: int | None = None,
             on_progress: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> Diagnosis:
    """Every finding on the run's data, most suspicious first. RunError for a run without a model, DatasetError
    when its data changed since it trained.

    `folds`: cross-validate the training split first (core.folds; K trainings, `on_progress` follows them) unless
    the run folder holds fold probabilities for that K already. None: fold probabilities the run folder holds (any
    K) are used, else the training dynamics; 0: the training dynamics only."""
    import pandas as pd

    from core.data.clean import prepare
    from core.predict import Predictor
    from core.runs.store import Run
    from core.training.dynamics import FILE
    from core.training.setup import check_same_data

    run = Run(Path(run_path))
    if not run.info.has_model:
        raise RunError(f"run {run.path.name} has no saved model to diagnose its data with; train it to the end "
                       "(or stop it after its first epoch) first")
    config = run.train_config()
    data = prepare(config)
    check_same_data(run.path, data)
    from core.folds import cross_validate, load_saved

    crossed = load_saved(run.path, data, config, folds) if folds != 0 else None
    if crossed is None and folds:  # before the run's model is loaded: the folds may pick the GPU with room
        crossed = cross_validate(run.path, folds, on_progress, stop, data=data)
    names = list(data.label_names)
    predictor = Predictor(run.path, calibrated=False)
    splits = {name: data.splits[name].reset_index(drop=True) for name in ("train", "validation", "test")}
    probs = {name: _probabilities(predictor, frame, names, batch_size) for name, frame in splits.items()}
    diagnosis = Diagnosis([], train_rows=[int(r) for r in splits["train"]["row"]])
    findings = diagnosis.findings
    held = pd.concat([splits["validation"].assign(split="validation"), splits["test"].assign(split="test")],
                     ignore_index=True)
    held_probs = np.concatenate([probs["validation"], probs["test"]])
    dynamics = run.path / FILE
    if crossed is not None:  # validation and test: the fold models' mean, a little better than the kept model alone
        every = pd.concat([splits["train"].assign(split="train"), held], ignore_index=True)
        fold_mean = np.concatenate([crossed.held["validation"], crossed.held["test"]])
        findings += _confident_learning(every, np.concatenate([crossed.train, fold_mean]), names, crossed.folds)
        diagnosis.notes.append(f"training labels checked on {crossed.folds}-fold out-of-sample probabilities "
                               f"({crossed.seconds / 60:.0f} min to compute, kept in the run folder)")
    else:
        findings += _confident_learning(held, held_probs, names)
    if dynamics.exists():
        with np.load(dynamics) as saved:
            findings += _training_findings(splits["train"], saved["probability"], saved["margin"],
                                           probs["train"], names, label_errors=crossed is None)
        if crossed is None:
            diagnosis.notes.append(f"training labels judged from the training dynamics; sentitune doctor "
                                   f"{run.path.name} --folds 4 judges them out of sample (4 more trainings)")
    elif crossed is None:
        diagnosis.notes.append(f"run {run.path.name} recorded no training dynamics (runs before the data doctor, or "
                               "several processes): training reviews are checked for copies only; train it again "
                               "to check their labels")
    copies, leaked = _copies(splits, names)
    findings += copies
    findings.sort(key=lambda f: (-f.score, KINDS.index(f.kind), f.split, f.row))
    test_correct = probs["test"].argmax(axis=1) == splits["test"]["label"].to_numpy()
    if len(test_correct):
        diagnosis.test_accuracy = float(test_correct.mean())
        keep = ~np.isin(np.arange(len(test_correct)), sorted(leaked))
        diagnosis.leaked_test_rows = int((~keep).sum())
        if keep.any():
            diagnosis.test_accuracy_without_leaks = float(test_correct[keep].mean())
    return diagnosis


def _probabilities(predictor, frame, names: list[str], batch_size: int) -> np.ndarray:
    if not len(frame):
        return np.zeros((0, len(names)))
    predictions = predictor.predict(frame["text"].tolist(), batch_size=batch_size)
    return np.asarray([[p.probabilities[n] for n in names] for p in predictions], dtype=np.float64)


def _confident_learning(frame, probabilities: np.ndarray, names: list[str], folds: int = 0) -> list[Finding]:
    """Confident learning (cleanlab) on out-of-sample probabilities: the run's model for validation and test
    reviews, the fold model that left it out for a training review (`folds`)."""
    if len(frame) < 2 or len(set(frame["label"])) < 2:
        return []
    from cleanlab.filter import find_label_issues

    labels = frame["label"].to_numpy()
    issues = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
    out = []
    for i in issues:
        row = frame.iloc[int(i)]
        given, suggested = int(labels[i]), int(probabilities[i].argmax())
        if not folds:
            who = "the model (which never trained on it)"
        elif row["split"] == "train":
            who = f"a model fine-tuned on the other {folds - 1} of {folds} folds of training reviews, never on it,"
        else:
            who = f"the {folds} fold models (none trained on it), on average,"
        out.append(Finding(str(row["split"]), int(row["row"]), str(row["text"]), names[given], names[suggested],
                           round(float(1 - probabilities[i, given]), 4), "label_error",
                           f"{who} gives its label {probabilities[i, given]:.0%} and {names[suggested]} "
                           f"{probabilities[i, suggested]:.0%}"))
    return out


def _training_findings(train, probability: np.ndarray, margin: np.ndarray, final: np.ndarray,
                       names: list[str], label_errors: bool = True) -> list[Finding]:
    """Area under the margin (label errors, unless cross-validation found them) and cartography (ambiguous) from
    the recorded epochs."""
    if probability.shape[1] != len(train):
        return []
    seen = ~np.isnan(probability).all(axis=0)
    with np.errstate(all="ignore"):
        confidence = np.nanmean(probability, axis=0)
        variability = np.nanstd(probability, axis=0)
        area = np.nanmean(margin, axis=0)
    out = []
    epochs = int((~np.isnan(probability)).any(axis=1).sum())
    for i in np.flatnonzero(seen):
        row = train.iloc[int(i)]
        given = int(row["label"])
        suggested = int(final[i].argmax()) if int(final[i].argmax()) != given else int(
            np.argsort(final[i])[-2]) if len(names) > 1 else given
        if area[i] < 0 and confidence[i] < 0.5:
            if not label_errors:
                continue
            out.append(Finding("train", int(row["row"]), str(row["text"]), names[given], names[suggested],
                               round(float(min(1.0, -area[i] + (0.5 - confidence[i]))), 4), "label_error",
                               f"over {epochs} epoch(s) of training on it the model gave its label {confidence[i]:.0%} "
                               f"on average, below another label (mean margin {area[i]:+.2f})"))
        elif variability[i] >= AMBIGUOUS_VARIABILITY and 0.3 <= confidence[i] <= 0.7:
            out.append(Finding("train", int(row["row"]), str(row["text"]), names[given], None,
                               round(float(variability[i]), 4), "ambiguous",
                               f"the model never settled on it: its label's probability varied by "
                               f"{variability[i]:.2f} across epochs around {confidence[i]:.0%}"))
    return out


def _copies(splits: dict, names: list[str]) -> tuple[list[Finding], set[int]]:
    """Near duplicates within a split, and validation/test reviews close to a training review (leaks)."""
    from core.data.copies import find_copies

    out, leaked = [], set()
    for c in find_copies(splits):
        frame = splits[c.split]
        text, label = str(frame["text"].iloc[c.position]), names[int(frame["label"].iloc[c.position])]
        if c.leak:
            if c.split == "test":
                leaked.add(c.position)
            out.append(Finding(c.split, c.row, text, label, None, c.similarity, "leak",
                               f"{c.similarity:.0%} similar to training row {c.other_row}: the model may have "
                               f"learned it there ({c.other_text[:60]!r})"))
        else:
            out.append(Finding(c.split, c.row, text, label, None, c.similarity, "near_duplicate",
                               f"{c.similarity:.0%} similar to row {c.other_row}"))
    return out, leaked


def write_clean(run_path: str | Path, findings: list[Finding], out: str | Path, relabel: bool) -> dict[str, Any]:
    """A copy of the run's data file without the rows of `findings` (with `relabel`, label errors get their
    suggested label instead, the rest is dropped), and a sidecar
    (`OUT.changes.json`) listing every change. The source is never touched. Returns the sidecar's content."""
    from core.data.clean import load_clean
    from core.data.sources import _load_local, is_local_source
    from core.errors import DatasetError
    from core.files import write_json_atomic, write_text_atomic
    from core.runs.store import Run

    run = Run(Path(run_path))
    config = run.train_config()
    if not is_local_source(config.dataset):
        raise DatasetError(f"run {run.path.name} trained on the Hub dataset {config.dataset}: --write-clean writes "
                           "a copy of a local file; save the dataset to a CSV first")
    source = Path(config.dataset).expanduser()
    out = Path(out).expanduser()
    if out.resolve() == source.resolve():
        raise DatasetError(f"{out} is the run's own data file; write the cleaned copy to another file")
    raw, _ = _load_local(str(source))
    if Path(source).is_dir():
        raise DatasetError(f"run {run.path.name} trained on the folder {source}: --write-clean needs one data file")
    cleaned = load_clean(config)
    label_column = cleaned.label_column
    raw_for_class: dict[str, Any] = {}
    by_row = dict(zip(cleaned.rows["row"], cleaned.rows["label"]))
    for position, value in enumerate(raw[label_column].tolist(), 1):
        if position in by_row:
            raw_for_class.setdefault(cleaned.mapping.names[int(by_row[position])], value)
    changes, drop = [], set()
    frame = raw.copy()
    for f in findings:
        position = f.row - 1
        if relabel and f.kind == "label_error" and f.suggested_label in raw_for_class:  # the rest is dropped
            new = raw_for_class[f.suggested_label]
            changes.append({"row": f.row, "change": "relabelled", "from": str(frame.at[position, label_column]),
                            "to": str(new), "kind": f.kind, "reason": f.reason})
            frame.at[position, label_column] = new
        else:
            drop.add(position)
            changes.append({"row": f.row, "change": "dropped", "kind": f.kind, "reason": f.reason})
    frame = frame.drop(index=sorted(drop))
    write_text_atomic(out, frame.to_csv(index=False))
    sidecar = {"source": str(source), "run": str(run.path), "rows_written": len(frame), "changes": changes}
    write_json_atomic(out.with_name(out.name + ".changes.json"), sidecar)
    return sidecar


def clean_copy_path(run_path: str | Path) -> Path:
    """Where the app writes a run's cleaned data: `<data>.clean.csv` beside the data file, or in the runs folder
    when that folder cannot be written."""
    import os

    from core.runs.store import Run

    run = Run(Path(run_path))
    source = Path(run.train_config().dataset).expanduser()
    folder = source.parent if os.access(source.parent, os.W_OK) else run.path.parent
    return folder / f"{source.stem}.clean.csv"
