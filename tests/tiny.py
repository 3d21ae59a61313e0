"""Offline stand-ins for tests: a tiny DistilBERT with a WordPiece tokenizer, and generated reviews."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

POSITIVE = ["great", "wonderful", "excellent", "loved", "superb", "delightful", "brilliant", "enjoyable"]
NEGATIVE = ["awful", "terrible", "boring", "hated", "dreadful", "poor", "worst", "dull"]
NEUTRAL = ["the", "movie", "book", "plot", "story", "actors", "ending", "music", "was", "really", "quite",
           "and", "a", "it", "this", "product", "arrived", "on", "time", "overall", "felt"]


def review(rng: random.Random, positive: bool) -> str:
    """A short generated review whose sentiment words give its label away."""
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(4, 14))]
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if positive else NEGATIVE))
    return " ".join(words)


def reviews_frame(n: int = 200, seed: int = 0, text_col: str = "text", label_col: str = "label",
                  labels: tuple = ("negative", "positive")) -> pd.DataFrame:
    """`n` generated reviews, balanced, with labels written as `labels` (negative, positive)."""
    rng = random.Random(seed)
    rows = []
    seen = set()
    while len(rows) < n:
        positive = len(rows) % 2 == 1
        text = review(rng, positive)
        if text in seen:
            continue
        seen.add(text)
        rows.append({text_col: text, label_col: labels[int(positive)]})
    return pd.DataFrame(rows)


def build_tiny_model(folder: Path) -> Path:
    """Save a 2-layer, width-32 DistilBERT and a WordPiece tokenizer trained on generated text."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    corpus = [review(rng, i % 2 == 0) for i in range(500)]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
    )
    fast.save_pretrained(folder)
    config = DistilBertConfig(
        vocab_size=tok.get_vocab_size(), dim=32, hidden_dim=64, n_layers=2, n_heads=2,
        max_position_embeddings=512, pad_token_id=0,
    )
    import torch

    torch.manual_seed(0)
    DistilBertForSequenceClassification(config).save_pretrained(folder)
    return folder


def train_on_rows(rows: list[dict], folder: Path, model: Path, **settings) -> Path:
    """Write `rows` (text, label) as a CSV in `folder`, train the tiny model on them, return the run folder.

    The recipe trains the tiny model to high accuracy in seconds; `settings` override it (max_length...).
    """
    import threading

    from core.config import TrainConfig
    from core.training.train import train

    path = folder / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    config = TrainConfig(model=str(model), dataset=str(path), **{
        "epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "eval_batch_size": 32, **settings})
    return train(config, folder / "runs", stop_event=threading.Event()).run_dir
