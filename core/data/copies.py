"""Near copies among a dataset's reviews, and validation or test reviews that copy a training one (leaks): character
3-5-gram TF-IDF vectors (scikit-learn) with a cosine similarity of at least NEAR. Exact copies are dropped when the
data is cleaned; these are the ones a typo, punctuation or a changed word kept apart."""

from __future__ import annotations

from dataclasses import dataclass

NEAR = 0.9
SPLIT_ORDER = ("train", "validation", "test")


@dataclass(frozen=True)
class Copy:
    split: str
    position: int
    """Its place in its split."""
    row: int
    """Its row in the data file."""
    other_split: str
    other_row: int
    other_text: str
    similarity: float

    @property
    def leak(self) -> bool:
        """A validation or test review close to a training review: the model may have learned its answer."""
        return self.split != "train" and self.other_split == "train"


def find_copies(splits: dict) -> list[Copy]:
    """Each review that nearly copies another: a validation or test review close to a training one is a leak
    (whatever else it resembles); otherwise the later of two close reviews of one split (the first is kept)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    frames = [splits[s].assign(split=s, position=range(len(splits[s]))) for s in SPLIT_ORDER if s in splits]
    every = pd.concat(frames, ignore_index=True)
    if len(every) < 2:
        return []
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(every["text"])
    distances, indices = NearestNeighbors(radius=1 - NEAR, metric="cosine").fit(vectors).radius_neighbors(
        vectors, sort_results=True)
    split_of, rows, texts = every["split"].to_numpy(), every["row"].to_numpy(), every["text"].to_numpy()
    positions = every["position"].to_numpy()
    out = []
    for i, (dist, idx) in enumerate(zip(distances, indices)):
        near = [(1 - float(d), int(j)) for d, j in zip(dist, idx) if j != i]  # most similar first
        in_training = [(s, j) for s, j in near if split_of[j] == "train"]
        earlier = [(s, j) for s, j in near if split_of[j] == split_of[i] and j < i]
        chosen = in_training[0] if split_of[i] != "train" and in_training else (earlier[0] if earlier else None)
        if chosen is not None:
            similarity, j = chosen
            out.append(Copy(str(split_of[i]), int(positions[i]), int(rows[i]), str(split_of[j]), int(rows[j]),
                            str(texts[j]), round(similarity, 4)))
    return out


def copies_note(copies: list[Copy]) -> str | None:
    """A line for the data's notes: how many near copies and leaks, and what to do; None when there are none."""
    if not copies:
        return None
    leaks = sum(c.leak for c in copies)
    parts = []
    if leaks:
        parts.append(f"{leaks} validation/test review{'s' if leaks != 1 else ''} nearly copy a training review "
                     "(leaks: the scores may flatter the model)")
    if len(copies) - leaks:
        parts.append(f"{len(copies) - leaks} near copies within a split")
    return "; ".join(parts) + "; after training, sentitune doctor RUN (F4's Data tab) lists them and writes a clean copy"
