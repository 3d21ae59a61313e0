"""Why the model said what it said: word-level Integrated Gradients over the embedding layer.

Each word gets a score: how much it pushed the predicted label's logit up (positive) or down (negative),
measured against a baseline review of padding tokens. The scores add up to the logit's change from that
baseline (IG's completeness); the gap is the convergence delta, which falls as the number of steps rises.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import PredictError
from core.predict import Prediction, Predictor

START_STEPS = 32  # enough for a converged delta on most short reviews, fast on CPU
MAX_STEPS = 256
TOLERANCE = 0.05  # the delta as a share of the logit change it explains; above it the steps are doubled


@dataclass(frozen=True)
class WordScore:
    word: str
    score: float
    """Toward the predicted label when positive, away from it when negative (logit units)."""
    spaced: bool = True
    """Whether a space comes before it in the review (punctuation is a word of its own, written without one)."""


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

    def to_dict(self) -> list[dict]:
        return [{"word": w.word, "score": round(w.score, 6)} for w in self.words]


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

    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits[:, target] / (predictor.temperature or 1.0)

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
    words: list[WordScore] = []
    last_word, start, end, score = None, 0, 0, 0.0

    def add() -> None:
        words.append(WordScore(cleaned[start:end], score, spaced=start > 0 and cleaned[start - 1].isspace()))

    for token, (word, (a, b)) in enumerate(zip(word_ids, offsets)):
        if word is None:
            continue
        if word != last_word and last_word is not None:
            add()
            score = 0.0
        if word != last_word:
            start, last_word = a, word
        end, score = b, score + per_token[token]
    if last_word is not None:
        add()
    truncated = bool(words) and end < len(cleaned.rstrip())
    return Explanation(prediction, words, delta, steps, truncated)
