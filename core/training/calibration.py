"""Honest confidence: expected calibration error, a reliability table, and temperature scaling.

A model that says "98% confident" should be right about 98% of the time it says so. Fine-tuned
transformers are usually over-confident; dividing the logits by one temperature, fitted on the
validation split, fixes most of it without changing a single predicted label.

But a temperature fitted on a small validation split can make confidences worse (on 60-120 reviews it raised
the test ECE in 2 of 4 runs). So one is applied only where the validation data supports it: at least
MIN_REVIEWS reviews, and a lower log-loss on held-out parts of the validation split (5-fold cross-validation)
than the plain softmax. The ECE is reported with a bootstrap interval, so a gain inside the noise reads as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15  # the usual choice in the calibration literature (Guo et al. 2017), so figures compare
MIN_REVIEWS = 100  # below it, a fitted temperature made test confidences worse as often as better
FOLDS = 5
MIN_GAIN = 0.01  # the held-out log-loss must fall by at least 1% for a temperature to be applied


@dataclass(frozen=True)
class ReliabilityBin:
    """Reviews whose confidence fell in [low, high): how confident the model was, and how often right."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "count": self.count, "confidence": self.confidence,
                "accuracy": self.accuracy}


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[ReliabilityBin]:
    """The non-empty confidence bins of `probabilities` (rows sum to 1) against the true `labels`."""
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1.0 belongs in the last bin.
    index = np.minimum(np.digitize(confidence, edges[1:-1], right=False), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), int(mask.sum()),
                                      float(confidence[mask].mean()), float(correct[mask].mean())))
    return out


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE: the gap between confidence and accuracy per bin, weighted by the bin's share of reviews."""
    table = reliability(probabilities, labels, bins)
    total = sum(b.count for b in table)
    return float(sum(b.count * abs(b.confidence - b.accuracy) for b in table) / total) if total else 0.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 that minimises the negative log-likelihood of softmax(logits / T).

    One scalar, fitted with L-BFGS on log T (so T stays positive); labels are unchanged by it.
    """
    import torch

    logits_t = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if logits_t.numel() == 0:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.exp().item())
    # A split the model gets all right drives T towards 0 (ever sharper); keep it within a sane range.
    return float(min(max(temperature, 0.05), 20.0)) if np.isfinite(temperature) else 1.0


def scaled_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class TemperatureChoice:
    """The temperature to apply (None: the plain softmax is kept) and why, in a line a student can read."""

    temperature: float | None
    reason: str


def log_loss(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / temperature)."""
    probabilities = scaled_softmax(logits, temperature)
    picked = probabilities[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(picked, 1e-300, None)).mean())


def choose_temperature(logits: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> TemperatureChoice:
    """A temperature fitted on all of the validation split, kept only when fitting one helps on held-out folds."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n < MIN_REVIEWS:
        return TemperatureChoice(None, f"not applied: the validation split has {n} reviews, fewer than the "
                                       f"{MIN_REVIEWS} a temperature needs to help more often than it hurts")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    before = after = 0.0
    for k, held in enumerate(parts):
        fit_on = np.concatenate([p for j, p in enumerate(parts) if j != k])
        temperature = fit_temperature(logits[fit_on], labels[fit_on])
        before += log_loss(logits[held], labels[held]) * len(held)
        after += log_loss(logits[held], labels[held], temperature) * len(held)
    before, after = before / n, after / n
    summary = f"held-out log-loss {before:.3f} -> {after:.3f} over {folds} folds of the validation split"
    if after > before * (1 - MIN_GAIN):
        return TemperatureChoice(None, f"not applied: it did not help on held-out reviews ({summary})")
    return TemperatureChoice(fit_temperature(logits, labels), f"applied: {summary}")


def ece_interval(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS, draws: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval of the ECE (reviews resampled with replacement, seeded)."""
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    n = len(labels)
    if n == 0:
        return 0.0, 0.0
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum(np.digitize(confidence, edges[1:-1], right=False), bins - 1)
    rng = np.random.default_rng(seed)
    values = np.empty(draws)
    for d in range(draws):
        pick = rng.integers(0, n, n)
        said = np.bincount(index[pick], weights=confidence[pick], minlength=bins)
        right = np.bincount(index[pick], weights=correct[pick], minlength=bins)
        values[d] = np.abs(said - right).sum() / n
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
