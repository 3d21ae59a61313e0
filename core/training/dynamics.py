"""Training dynamics: for every training review, at every epoch, the probability the model gave its label and the
margin of that label over the strongest other one, taken from the training forward passes themselves (no extra
pass: the cost is a softmax over logits already computed). The data doctor (core.doctor) reads them: dataset
cartography's confidence and variability (Swayamdipta et al. 2020), and the area under the margin (Pleiss et al.
2020), which flags reviews whose label the model keeps contradicting while it trains on them.

Stored in the run folder as `dynamics.npz`: `probability` and `margin`, arrays of epochs x training reviews (NaN
where an epoch did not reach a review), rewritten at each epoch's end so a resumed run continues them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

FILE = "dynamics.npz"


class DynamicsRecorder:
    """Collects (review index, gold probability, margin) per training batch; written per epoch."""

    def __init__(self, path: Path, reviews: int, epochs: int):
        self.path, self.reviews, self.epochs = Path(path), reviews, epochs
        self.probability = np.full((epochs, reviews), np.nan, dtype=np.float32)
        self.margin = np.full((epochs, reviews), np.nan, dtype=np.float32)
        self._pending: list = []
        if self.path.exists():  # a resumed run: the epochs recorded before it stopped
            try:
                with np.load(self.path) as saved:
                    if saved["probability"].shape == self.probability.shape:
                        self.probability[:], self.margin[:] = saved["probability"], saved["margin"]
            except (OSError, ValueError, KeyError):
                pass

    def record(self, epoch: float, index, logits, labels) -> None:
        """One batch: kept on the device until the epoch ends (no synchronisation per step)."""
        import torch

        with torch.no_grad():
            probs = torch.softmax(logits.detach().float(), dim=-1)
            gold = probs.gather(1, labels.view(-1, 1)).squeeze(1)
            others = probs.scatter(1, labels.view(-1, 1), -1.0).max(dim=1).values
        self._pending.append((min(int(math.floor(epoch)), self.epochs - 1), index.detach(), gold, gold - others))

    def flush(self) -> None:
        """Move what was collected into the arrays and write them (atomically)."""
        import os

        for epoch, index, gold, margin in self._pending:
            rows = index.cpu().numpy()
            self.probability[epoch, rows] = gold.cpu().numpy()
            self.margin[epoch, rows] = margin.cpu().numpy()
        self._pending.clear()
        partial = self.path.with_name(f".{self.path.name}.partial.npz")
        np.savez(partial, probability=self.probability, margin=self.margin)
        os.replace(partial, self.path)
