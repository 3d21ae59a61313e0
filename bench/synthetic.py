"""Build a DistilBERT-base-sized model (random weights, no download) and synthetic reviews whose token
lengths match Amazon reviews (mean ~110, long tail to 300), for GPU checks without the Hub.

    python bench/synthetic.py OUT_DIR [--rows 5000] [--small]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

POS = ["great", "excellent", "love", "perfect", "wonderful", "best", "amazing", "recommend"]
NEG = ["terrible", "awful", "broke", "waste", "worst", "disappointed", "refund", "poor"]


def words(rng: random.Random, n: int) -> list[str]:
    return [f"w{rng.randint(0, 3000)}" for _ in range(n)]


def build(out: Path, rows: int, small: bool) -> tuple[Path, Path]:
    import pandas as pd
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, PreTrainedTokenizerFast

    rng = random.Random(0)
    records = []
    for i in range(rows):
        length = min(int(rng.lognormvariate(4.5, 0.55)), 300)  # mean ~105, tail to 300
        positive = i % 2 == 0
        body = words(rng, max(length - 3, 1))
        for _ in range(3):
            body.insert(rng.randrange(len(body) + 1), rng.choice(POS if positive else NEG))
        records.append({"text": " ".join(body), "label": "positive" if positive else "negative"})
    data = out / "synthetic_reviews.csv"
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(data, index=False)

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator((r["text"] for r in records), trainers.WordPieceTrainer(vocab_size=8000, special_tokens=specials))
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    model_dir = out / "distilbert-base-random"
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]", model_max_length=512).save_pretrained(model_dir)
    size = dict(dim=64, hidden_dim=128, n_layers=2, n_heads=2) if small else {}
    config = DistilBertConfig(vocab_size=tok.get_vocab_size(), pad_token_id=0, **size)  # defaults: 768 wide, 6 layers
    DistilBertForSequenceClassification(config).save_pretrained(model_dir)
    return model_dir, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--small", action="store_true", help="a tiny model, to try the script on a CPU")
    args = parser.parse_args()
    model_dir, data = build(args.out, args.rows, args.small)
    print(model_dir)
    print(data)


if __name__ == "__main__":
    main()
