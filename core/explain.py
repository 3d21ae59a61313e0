"""Why the model said what it said: word-level Integrated Gradients over the embedding layer.

Each word gets a score: how much it raised (positive) or lowered (negative) the log-odds of the predicted label
(log p(label) - log p(any other label), the logits divided by the run's temperature), measured against a baseline
review of padding tokens. The log-odds, not the label's raw logit: the label and its confidence depend only on
the differences between logits, so a word that raises every logit, the other label's more, pushes the review
away from its label although it raises the label's own logit. And not the log-probability, which saturates: a
confident model's log p(label) barely moves, so every word would score near zero. The scores add up to the
log-odds' change from the baseline (IG's completeness); the gap is the convergence delta, which falls as the
number of steps rises.

Words are the review's whitespace-separated words: the word pieces and punctuation a tokenizer splits a word into
("isn't" into isn, ', t) are summed into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import PredictError
from core.predict import Prediction, Predictor

START_STEPS = 32  # enough for a converged delta on most short reviews, fast on CPU
MAX_STEPS = 256
TOLERANCE = 0.05  # the delta as a share of the logit change it explains; above it the steps are doubled


@dataclass(frozen=True)
class WordScore:
    word: str
    """As written in the review, punctuation attached ("good,")."""
    score: float
    """Toward the predicted label when positive, away from it when negative (change in its log-odds)."""
    spaced: bool = True
    """Whether a space comes before it in the review (only the first word has none)."""
    position: int = 0
    """Its place in the review, counting words from 1."""

    @property
    def bare(self) -> str:
        """The word without the punctuation around it ("good," -> "good"); punctuation alone stays as it is."""
        return self.word.strip(PUNCTUATION) or self.word


PUNCTUATION = "\"'.,;:!?()[]{}<>«»“”‘’…-–—*_/\\"


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    words: list[WordScore]
    """The words the model read, in text order (a review cut at max_length stops where the model stopped)."""
    delta: float
    """Sum of scores minus the logit change they explain; near 0 when the attribution converged."""
    steps: int
    truncated: bool

    def top(self, count: int = 5, toward: bool = True) -> list[WordScore]:
        """The `count` words that pushed hardest toward the label (or away from it), strongest first."""
        signed = [w for w in self.words if (w.score > 0 if toward else w.score < 0)]
        return sorted(signed, key=lambda w: -abs(w.score))[:count]

    def name(self, word: WordScore) -> str:
        """How a list names `word`: bare, and with its place when the review holds that word more than once."""
        repeated = sum(1 for w in self.words if w.bare.lower() == word.bare.lower()) > 1
        return f"{word.bare} (word {word.position})" if repeated else word.bare

    def to_dict(self) -> list[dict]:
        return [{"word": w.word, "score": round(w.score, 6), "position": w.position} for w in self.words]


IG_TOKENS_PER_BATCH = 8192
"""Tokens one Integrated Gradients pass holds at once (steps x review length): activations and gradients of a
base-sized model take about 0.35 MB per token, so about 3 GB, whatever the review's length or the step count.
All 256 steps of a 421-token review at once took 20+ GB, more than a T4 has, inside the app's training process."""


def ig_batch(steps: int, tokens: int) -> int:
    """How many of the `steps` interpolation steps to run in one forward and backward pass."""
    return max(1, min(steps, IG_TOKENS_PER_BATCH // max(tokens, 1)))


def explain(predictor: Predictor, text: str, steps: int = START_STEPS, max_steps: int = MAX_STEPS) -> Explanation:
    """The predicted label of `text` and each word's part in it (see the module docstring)."""
    if predictor.onnx:
        raise PredictError("explanations need the PyTorch model, not its ONNX export: pick the run folder")
    with predictor.lock:  # Captum hooks the embedding layer; no prediction may run through it meanwhile
        return _explain(predictor, text, steps, max_steps)


def _explain(predictor: Predictor, text: str, steps: int, max_steps: int) -> Explanation:
    import torch
    from captum.attr import LayerIntegratedGradients

    prediction = predictor.predict(text)[0]
    cleaned = " ".join(prediction.text.split())
    tokenizer, model = predictor.tokenizer, predictor.model
    if not getattr(tokenizer, "is_fast", False):
        raise PredictError("explanations need a fast tokenizer (tokenizer.json) to map word pieces back to words")
    enc = tokenizer(cleaned, truncation=True, max_length=predictor.max_length, return_tensors="pt",
                    return_offsets_mapping=True)
    word_ids = enc.word_ids(0)
    offsets = enc.pop("offset_mapping")[0].tolist()
    enc = enc.to(predictor.device)
    input_ids, attention = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor([w is None for w in word_ids], device=predictor.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    baseline = torch.where(special, input_ids, torch.full_like(input_ids, pad))  # keep [CLS]/[SEP], blank the words
    target = predictor.label_names.index(prediction.label)

    def forward(ids, mask):  # the label's log-odds: log p(label) - log p(any other label), as calibrated
        logits = model(input_ids=ids, attention_mask=mask).logits.float() / (predictor.temperature or 1.0)
        others = torch.cat([logits[:, :target], logits[:, target + 1:]], dim=1)
        return logits[:, target] - torch.logsumexp(others, dim=1)

    ig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        change = float(forward(input_ids, attention) - forward(baseline, attention))
    while True:
        attributions, delta = ig.attribute(input_ids, baselines=baseline, additional_forward_args=(attention,),
                                           n_steps=steps, internal_batch_size=ig_batch(steps, input_ids.shape[1]),
                                           return_convergence_delta=True)
        delta = float(delta.abs().item())
        if delta <= TOLERANCE * max(abs(change), 1e-6) or steps >= max_steps:
            break
        steps = min(steps * 2, max_steps)
    per_token = attributions.sum(dim=-1)[0].detach().cpu().tolist()
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", cleaned)]  # the review's words
    scores: dict[int, float] = {}
    chunk = 0
    for token, (word, (a, _)) in enumerate(zip(word_ids, offsets)):
        if word is None:
            continue
        while chunk + 1 < len(spans) and spans[chunk][1] <= a:
            chunk += 1
        scores[chunk] = scores.get(chunk, 0.0) + per_token[token]
    words = [WordScore(cleaned[spans[i][0]:spans[i][1]], scores[i], spaced=i > 0, position=i + 1)
             for i in sorted(scores)]
    end = spans[max(scores)][1] if scores else 0
    truncated = bool(words) and end < len(cleaned.rstrip())
    return Explanation(prediction, words, delta, steps, truncated)
