import json
import subprocess
import sys

import pytest

from core.cli import main
from tests.tiny import reviews_frame


def run_cli(capsys, *args):
    try:
        code = main(list(map(str, args)))
    except SystemExit as exc:  # argparse exits on a bad flag
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def minus_one_csv(tmp_path):
    """A file with other column names and -1/1 labels."""
    path = tmp_path / "opinions.csv"
    reviews_frame(200, text_col="comment", label_col="verdict", labels=(-1, 1)).to_csv(path, index=False)
    return path


def test_train_json_then_predict_and_runs(capsys, tmp_path, tiny_model, minus_one_csv):
    code, out, err = run_cli(
        capsys, "train", "--model", tiny_model, "--dataset", minus_one_csv, "--text-columns", "comment",
        "--label-column", "verdict", "--epochs", "2", "--batch-size", "8", "--learning-rate", "5e-3",
        "--max-length", "64", "--output-dir", tmp_path / "runs", "--json",
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["event"] == "TrainingFinished"
    run_dir = lines[-1]["run_dir"]
    assert any(e["event"] == "StepLogged" for e in lines)

    code, out, _ = run_cli(capsys, "predict", run_dir, "great wonderful", "awful dull", "--json")
    preds = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [p["text"] for p in preds] == ["great wonderful", "awful dull"]
    assert preds[0]["label"] == "positive" and set(preds[0]) == {"text", "label", "confidence", "probabilities"}

    code, out, _ = run_cli(capsys, "runs", "--output-dir", tmp_path / "runs")
    assert code == 0 and "finished" in out

    code, out, _ = run_cli(capsys, "evaluate", run_dir)
    assert code == 0 and "accuracy" in out and "true \\ pred" in out


def test_train_readable_output(capsys, tmp_path, tiny_config):
    code, out, _ = run_cli(
        capsys, "train", "--model", tiny_config.model, "--dataset", tiny_config.dataset, "--epochs", "1",
        "--max-samples", "100", "--learning-rate", "5e-3", "--output-dir", tmp_path,
    )
    assert code == 0
    assert "baseline before fine-tuning (test): accuracy" in out
    assert "validation (epoch 1.00)" in out and "test: accuracy" in out
    assert out.strip().splitlines()[-1].startswith("run folder: ")


def test_config_file_with_flag_override(capsys, tmp_path, tiny_config):
    from core.config import save_toml

    path = save_toml(tiny_config.replace(epochs=5, max_samples=60), tmp_path / "job.toml")
    code, out, _ = run_cli(capsys, "data", "--config", path, "--max-samples", "80", "--json")
    stats = json.loads(out)
    assert code == 0 and sum(stats["rows"].values()) == 80


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "three"], "invalid settings: epochs: must be a whole number, not 'three'"),
        (["train", "--learning-rate", "-1"], "invalid settings: learning_rate: must be at least"),
        (["train", "--dataset", "missing.csv"], "dataset file not found: missing.csv"),
        (["train", "--config", "nope.toml"], "config: file not found: nope.toml"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["predict", "no-such-run", "hi"], "no run folder 'no-such-run'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_column_and_one_class(capsys, tmp_path, tiny_model, minus_one_csv):
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--dataset", minus_one_csv,
                           "--text-columns", "comment", "--label-column", "stars", "--output-dir", tmp_path / "runs")
    assert code == 2 and "label column 'stars' not found; columns are: comment, verdict" in err
    one = tmp_path / "one.csv"
    reviews_frame(50, labels=("positive", "positive")).to_csv(one, index=False)
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--dataset", one, "--output-dir", tmp_path / "runs")
    assert code == 2 and "only one label" in err
    assert not (tmp_path / "runs").exists()


def test_predict_empty_review(capsys, trained_run):
    code, _, err = run_cli(capsys, "predict", trained_run[0].run_dir, "  ")
    assert code == 2 and "the review is empty" in err


def test_console_script_runs_headless_without_textual(tmp_path):
    code = "import sys; from tui.launch import main; rc = main(['runs', '--output-dir', sys.argv[1]]); print('textual' in sys.modules); sys.exit(rc)"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().splitlines() == [f"no runs yet in {tmp_path}/", "False"]


def test_predict_imports_neither_the_app_nor_the_datasets_library(trained_run):
    """A prediction needs the model and its tokenizer: not textual, nor datasets (a second of import)."""
    code = ("import sys; from core.cli import main; rc = main(['predict', sys.argv[1], 'great']); "
            "print(sorted(m for m in ('textual', 'datasets', 'sklearn.model_selection') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(trained_run[0].run_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_runs_folder_named_like_a_command_opens_the_app_on_it(monkeypatch, capsys, tmp_path):
    import tui.app
    from tui.launch import main as launch

    monkeypatch.chdir(tmp_path)
    opened = []
    monkeypatch.setattr(tui.app, "run_app", lambda **kwargs: opened.append(kwargs) or 0)
    assert launch(["--output-dir", "runs"]) == 0 and opened[-1]["runs_root"] == "runs"
    assert launch(["--run", "train", "--output-dir", "predict"]) == 0 and opened[-1]["run"] == "train"
    assert launch(["runs", "--output-dir", "runs"]) == 0 and len(opened) == 2  # the `runs` command, headless
    assert "no runs yet" in capsys.readouterr().out


def test_evaluate_on_another_dataset_scores_every_row(capsys, tmp_path, trained_run):
    """max_samples of the run (5000 by default, 300 rows here) does not cap an evaluation file."""
    path = tmp_path / "more.csv"
    reviews_frame(2400, seed=5).to_csv(path, index=False)
    code, out, err = run_cli(capsys, "evaluate", trained_run[0].run_dir, "--dataset", path, "--json")
    assert code == 0 and json.loads(out)["n"] == 2400
    assert "scored 2,400/2,400 reviews" in err  # progress on long sets


@pytest.mark.parametrize("spelling", ["positive", "1"])
def test_evaluate_on_reviews_of_one_class_scores_them_and_says_what_it_cannot(capsys, tmp_path, trained_run,
                                                                                spelling):
    path = tmp_path / "praise.csv"
    frame = reviews_frame(200, seed=6)
    frame = frame[frame["label"] == "positive"].assign(label=spelling)
    frame.to_csv(path, index=False)
    code, out, err = run_cli(capsys, "evaluate", trained_run[0].run_dir, "--dataset", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == len(frame) and 0 <= report["accuracy"] <= 1
    assert report["recall"] == report["per_class"]["positive"]["recall"] == pytest.approx(report["accuracy"])
    assert "f1" not in report and "precision" not in report and "precision and F1 need" in report["note"]
    code, out, _ = run_cli(capsys, "evaluate", trained_run[0].run_dir, "--dataset", path)
    assert code == 0 and "every review is positive" in out and " f1 " not in out


def test_step_counts_match_the_trainer_when_batches_do_not_fill_the_accumulation(tmp_path, tiny_config):
    from core.events import TrainingStarted
    from core.training.train import train

    events = []
    # 210 training rows in batches of 8 are 27 batches: 7 optimizer steps of 4 (the last one partial).
    result = train(tiny_config.replace(epochs=1, gradient_accumulation=4, baseline=False), tmp_path,
                   on_event=events.append)
    started = next(e for e in events if isinstance(e, TrainingStarted))
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert started.steps_per_epoch == started.total_steps == metrics["global_step"] == 7


def test_baseline_is_scored_on_a_seeded_sample_of_the_test_split(tmp_path, tiny_config):
    from core.training.train import train

    events = []
    result = train(tiny_config.replace(epochs=1, baseline_samples=20), tmp_path, on_event=events.append)
    baseline = json.loads((result.run_dir / "metrics.json").read_text())["baseline"]
    assert baseline["n"] == 20 and baseline["sampled_from"] == 45
    assert any("20 of the 45 test reviews (a seeded sample; baseline_samples)" in getattr(e, "detail", "")
               for e in events)
