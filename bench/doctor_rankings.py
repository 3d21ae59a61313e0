"""Which ranking of the doctor's probabilities finds the flipped labels? Reads what bench/doctor_noise.py kept.

    python bench/doctor_noise.py --work DIR [--seed S]      # first: the noisy run, its dynamics and fold probabilities
    python bench/doctor_rankings.py --work DIR [--seed S] [--top 200]

For the noisy run of DIR (trained on the pool with 10% of its labels flipped, seed S), every pool row gets a score
from several sources: the fold models' out-of-sample probability of its label (`--folds`: one fold model for a
training row, the mean of the K for validation and test), the run's own model, and the training dynamics
(the label's probability at the first epoch, and averaged over the epochs). Each ranking is scored against the
flipped rows: precision of its top --top, and the AUC with which it separates flipped rows from the others, apart
for training rows and for validation and test rows. Cleanlab's own rankings of the fold probabilities are listed
too. No training: the run's model scores its rows once (a minute on a CPU).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="the --work folder of bench/doctor_noise.py")
    parser.add_argument("--seed", type=int, default=42, help="the --seed it ran with")
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--top", type=int, default=200)
    args = parser.parse_args()

    import pandas as pd
    from cleanlab.filter import find_label_issues
    from sklearn.metrics import roc_auc_score

    from core.data.clean import prepare
    from core.doctor import _probabilities
    from core.folds import load_saved
    from core.predict import Predictor
    from core.runs.store import Run
    from core.training.dynamics import FILE

    work = Path(args.work)
    if not (work / "noisy-run").exists():
        raise SystemExit(f"{work} holds no noisy run: run bench/doctor_noise.py --work {work} first")
    run = Run(Path((work / "noisy-run").read_text()))
    config = run.train_config()
    data = prepare(config)
    crossed = load_saved(run.path, data, config, None)
    if crossed is None:
        raise SystemExit(f"{run.path.name} holds no fold probabilities for its data: run bench/doctor_noise.py first")
    pool = pd.read_csv(work / "original.csv")  # the flips drawn as bench/doctor_noise.py draws them
    flipped = set(random.Random(args.seed).sample(range(len(pool)), int(args.flip * len(pool))))
    names = list(data.label_names)
    order = ("train", "validation", "test")
    splits = {name: data.splits[name].reset_index(drop=True) for name in order}
    labels = np.concatenate([splits[name]["label"].to_numpy() for name in order])
    flip = np.concatenate([[(int(r) - 1) in flipped for r in splits[name]["row"]] for name in order])
    trained = np.arange(len(labels)) < len(splits["train"])
    predictor = Predictor(run.path, calibrated=False)
    own = np.concatenate([_probabilities(predictor, splits[name], names, 64) for name in order])
    folds = np.concatenate([crossed.train, crossed.held["validation"], crossed.held["test"]])
    with np.load(run.path / FILE) as saved:
        dynamics = saved["probability"]
    first_epoch, mean_epochs = dynamics[0], np.nanmean(dynamics, axis=0)

    def gold(probabilities: np.ndarray) -> np.ndarray:
        return probabilities[np.arange(len(labels)), labels]

    fold_gold, own_gold = gold(folds), gold(own)
    count = int(trained.sum())  # training rows come first

    def training_rows(values: np.ndarray, others: np.ndarray = fold_gold) -> np.ndarray:
        return np.concatenate([values, others[count:]])

    scores = {  # the label's probability: lower is more suspicious
        f"--folds {crossed.folds} (the doctor)": fold_gold,
        "fold models, with the run's model in the mean for validation and test": training_rows(
            fold_gold[:count], (crossed.folds * fold_gold + own_gold) / (crossed.folds + 1)),
        "the run's model alone (in sample for training rows)": own_gold,
        "training rows: fold model and first-epoch dynamics, mean": training_rows(
            (fold_gold[:count] + first_epoch) / 2),
        "training rows: fold model and dynamics over the epochs, mean": training_rows(
            (fold_gold[:count] + mean_epochs) / 2),
        "training rows: fold model and the run's final model, mean": training_rows(
            (fold_gold[:count] + own_gold[:count]) / 2),
        "training rows: dynamics over the epochs alone": training_rows(mean_epochs, own_gold),
    }
    rows = []
    for name, score in scores.items():
        top = np.argsort(score, kind="stable")[:args.top]
        rows.append([name, f"{flip[top].mean():.3f}", f"{roc_auc_score(flip[trained], -score[trained]):.3f}",
                     f"{roc_auc_score(flip[~trained], -score[~trained]):.3f}"])
    for ranked_by in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
        issues = find_label_issues(labels, folds, return_indices_ranked_by=ranked_by)
        rows.append([f"cleanlab on the fold probabilities, ranked by {ranked_by} ({len(issues)} flagged)",
                     f"{flip[issues[:args.top]].mean():.3f}", "", ""])
    print(f"{run.path.name}: {len(labels)} rows, {int(flip.sum())} flipped ({int(flip[trained].sum())} of them "
          f"training rows)\n")
    print(table(["ranking", f"top {args.top} precision", "AUC, training rows", "AUC, validation and test rows"],
                rows))


if __name__ == "__main__":
    main()
