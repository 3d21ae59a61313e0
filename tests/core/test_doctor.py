"""The data doctor on a tiny run with planted label flips, near copies and a leak into the test split."""

import json

import pytest

from core.cli import main
from tests.tiny import reviews_frame, train_on_rows

FLIPPED = set(range(0, 400, 20))  # 20 of 400 rows carry the opposite label (their row numbers: position + 1)
COPIES = 12  # one review in near copies: some land in training, some in validation or test


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory, tiny_model):
    frame = reviews_frame(400, seed=11)
    flip = {"negative": "positive", "positive": "negative"}
    rows = [{"text": t, "label": flip[label] if i in FLIPPED else label}
            for i, (t, label) in enumerate(zip(frame["text"], frame["label"]))]
    rows += [{"text": f"the story felt really wonderful and the ending was superb {'!' * (k + 1)}",
              "label": "positive"} for k in range(COPIES)]
    return train_on_rows(rows, tmp_path_factory.mktemp("noisy"), tiny_model, max_length=32, epochs=4,
                         baseline=False)


@pytest.fixture(scope="module")
def diagnosis(noisy_run):
    from core.doctor import diagnose

    return diagnose(noisy_run)


def test_the_doctor_ranks_planted_label_flips_first(diagnosis):
    errors = [f for f in diagnosis.findings if f.kind == "label_error"]
    flipped_rows = {i + 1 for i in FLIPPED}
    found = [f for f in errors if f.row in flipped_rows]
    assert len(found) >= len(FLIPPED) // 2, [(f.row, f.split, f.score) for f in errors]
    top = errors[:10]
    assert sum(f.row in flipped_rows for f in top) >= 8  # precision of the top 10
    assert all(f.suggested_label != f.label for f in found)
    assert {f.split for f in found} >= {"train"} and any(f.split != "train" for f in found)  # AUM and cleanlab


def test_near_copies_are_flagged_and_a_leak_into_test_recomputes_the_score(diagnosis):
    copy_rows = set(range(401, 401 + COPIES))
    flagged = {f.row: f for f in diagnosis.findings if f.row in copy_rows and f.kind in ("leak", "near_duplicate")}
    assert len(flagged) >= COPIES - 2  # every copy but the first in training (the most distant pair may be under 90%)
    assert all((f.kind == "leak") == (f.split != "train") for f in flagged.values())
    leaks = [f for f in diagnosis.findings if f.kind == "leak"]
    leaked_test = [f for f in leaks if f.split == "test"]
    assert diagnosis.leaked_test_rows == len(leaked_test) > 0
    assert diagnosis.test_accuracy_without_leaks is not None


def test_doctor_json_and_a_cleaned_copy_that_trains(noisy_run, tmp_path, capsys, tiny_model):
    assert main(["doctor", str(noisy_run), "--json", "--top", "15"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 15
    assert set(lines[0]) == {"split", "row", "text", "label", "suggested_label", "score", "kind", "reason"}
    assert [line["score"] for line in lines] == sorted((line["score"] for line in lines), reverse=True)
    source = json.loads((noisy_run / "config.json").read_text())["config"]["dataset"]
    before = open(source).read()
    out = tmp_path / "clean.csv"
    assert main(["doctor", str(noisy_run), "--top", "15", "--write-clean", str(out), "--relabel"]) == 0
    assert open(source).read() == before  # the source is never touched
    changes = json.loads((tmp_path / "clean.csv.changes.json").read_text())
    relabelled = [c for c in changes["changes"] if c["change"] == "relabelled"]
    assert relabelled and all(c["from"] != c["to"] for c in relabelled)
    import pandas as pd

    written = pd.read_csv(out)
    assert len(written) == changes["rows_written"] == 412 - sum(c["change"] == "dropped" for c in changes["changes"])
    row = relabelled[0]["row"]
    original = pd.read_csv(source)
    text = original.loc[row - 1, "text"]
    assert written.loc[written["text"] == text, "label"].tolist() == [relabelled[0]["to"]]


def test_a_run_without_dynamics_is_still_checked_for_copies_and_says_so(noisy_run, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(noisy_run, tmp_path / "old-run")
    (copy / "dynamics.npz").unlink()
    assert main(["doctor", str(copy), "--json"]) == 0
    out, err = capsys.readouterr()
    kinds = {json.loads(line)["kind"] for line in out.splitlines()}
    assert "recorded no training dynamics" in err and "leak" in kinds
    assert all(json.loads(line)["split"] != "train" or json.loads(line)["kind"] != "label_error"
               for line in out.splitlines())


def test_the_doctor_refuses_changed_data_and_a_run_without_a_model(noisy_run, tmp_path, capsys):
    import shutil

    changed = shutil.copytree(noisy_run, tmp_path / "changed")
    data = tmp_path / "data.csv"
    record = json.loads((changed / "config.json").read_text())
    shutil.copy(record["config"]["dataset"], data)
    with open(data, "a") as fh:
        fh.write("a brand new excellent review,positive\n")
    record["config"]["dataset"] = str(data)
    (changed / "config.json").write_text(json.dumps(record))
    assert main(["doctor", str(changed)]) == 2
    err = capsys.readouterr().err
    assert "changed since it started" in err and len(err.strip().splitlines()) == 1
    untrained = shutil.copytree(noisy_run, tmp_path / "untrained", ignore=shutil.ignore_patterns("model"))
    assert main(["doctor", str(untrained)]) == 2
    assert "has no saved model to diagnose" in capsys.readouterr().err


def test_the_preview_warns_of_leaks_before_any_training(tmp_path, tiny_config):
    """F1 and `sentitune data`: near copies across the splits are said as soon as the data loads."""
    import pandas as pd

    from core.data.stats import build_preview
    from core.training.model import load_tokenizer

    frame = reviews_frame(200, seed=4)
    copies = pd.DataFrame([{"text": f"the music was wonderful and the plot superb {'!' * (k + 1)}", "label": "positive"}
                           for k in range(10)])
    path = tmp_path / "leaky.csv"
    pd.concat([frame, copies]).to_csv(path, index=False)
    notes = build_preview(tiny_config.replace(dataset=str(path)), load_tokenizer).data.notes
    assert any("nearly copy a training review (leaks" in n and "sentitune doctor" in n for n in notes), notes


def test_a_preview_too_large_to_search_says_it_was_not_checked(tmp_path, tiny_config, monkeypatch):
    import core.data.stats as stats
    from core.training.model import load_tokenizer

    monkeypatch.setattr(stats, "COPIES_CHECKED_ROWS", 10)
    path = tmp_path / "reviews.csv"
    reviews_frame(60).to_csv(path, index=False)
    notes = stats.build_preview(tiny_config.replace(dataset=str(path)), load_tokenizer).data.notes
    assert any("not checked for near copies and leaks here (60 rows, over 10)" in n for n in notes), notes


def test_folds_give_training_reviews_out_of_sample_probabilities_kept_for_the_next_doctor(noisy_run, tmp_path,
                                                                                          capsys, monkeypatch):
    """--folds K: K fold models, each scoring the training reviews it left out; confident learning ranks every
    review on that one scale; the probabilities stay in the run folder and are reused. An injected CUDA
    out-of-memory error at the run's batch of 8: the fold trains again at 4 with twice the gradient accumulation
    (the same effective batch), and the probabilities are kept under the run's own settings."""
    import shutil

    import numpy as np
    import torch

    import core.folds as folds
    from core.doctor import diagnose

    real_fit = folds._fit
    seen: list[tuple[int, int]] = []

    def tight_gpu(config, *args, **kwargs):
        seen.append((config.batch_size, config.gradient_accumulation))
        if config.batch_size > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_fit(config, *args, **kwargs)

    monkeypatch.setattr(folds, "_fit", tight_gpu)
    run = shutil.copytree(noisy_run, tmp_path / "run")
    lines: list[str] = []
    diagnosis = diagnose(run, folds=2, on_progress=lines.append)
    assert any(line.startswith("fold 2/2: fine-tuning") for line in lines), lines
    assert seen == [(8, 1), (4, 2), (4, 2)]  # the second fold starts at the smaller batch
    assert any("out of memory at batch_size 8; again at 4 with gradient_accumulation 2" in line for line in lines)
    with np.load(run / folds.FILE) as saved:
        train = saved["train"]
        assert train.shape == (len(diagnosis.train_rows), 2) and np.allclose(train.sum(axis=1), 1)
    assert any("2-fold out-of-sample" in n for n in diagnosis.notes)
    flipped_rows = {i + 1 for i in FLIPPED}
    errors = [f for f in diagnosis.findings if f.kind == "label_error"]
    train_errors = [f for f in errors if f.split == "train"]
    assert train_errors and all("never on it" in f.reason for f in train_errors)
    # two folds of ~140 reviews make weak tiny models: still, most of the top 20 are planted flips
    assert sum(f.row in flipped_rows for f in errors[:20]) >= 10, [(f.row, f.split, f.score) for f in errors[:20]]
    # the next doctor reuses them: no fold is trained again
    assert main(["doctor", str(run), "--json", "--top", "5"]) == 0
    out, err = capsys.readouterr()
    assert "fold 1/2" not in err and "2-fold out-of-sample" in err and len(out.splitlines()) == 5
    # a bad K is one clear line
    assert main(["doctor", str(run), "--folds", "1"]) == 2
    assert "folds: 1 is out of range" in capsys.readouterr().err


def test_a_fold_out_of_memory_at_a_batch_of_one_says_what_to_do(noisy_run, tmp_path, monkeypatch, capsys):
    """Nothing to halve: one line, nothing kept."""
    import shutil

    import torch

    import core.folds as folds

    monkeypatch.setattr(folds, "_fit", lambda *a, **k: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("CUDA out of memory")))
    monkeypatch.setattr("core.training.oom.half_batch", lambda config, evaluating=False: None)
    other = shutil.copytree(noisy_run, tmp_path / "other")
    assert main(["doctor", str(other), "--folds", "2"]) == 1
    err = capsys.readouterr().err
    assert "fold 1/2: the GPU ran out of memory at batch_size 8" in err and "Traceback" not in err
    assert not (other / folds.FILE).exists()


def test_folds_need_every_label_in_every_fold():
    import numpy as np

    from core.errors import ConfigError
    from core.folds import check_folds

    check_folds(3, np.array([0, 0, 0, 1, 1, 1]))
    with pytest.raises(ConfigError, match="need at least 4 training reviews of every label \\(the rarest has 3\\)"):
        check_folds(4, np.array([0, 0, 0, 0, 1, 1, 1]))
