"""The model card: Hugging Face's format, written for every run that saves a model."""

import yaml


def _card(run_dir):
    text = (run_dir / "model" / "README.md").read_text()
    assert text.startswith("---\n")
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def test_a_finished_run_has_a_model_card_with_its_test_figures(trained_run):
    import json

    run_dir = trained_run[0].run_dir
    meta, body = _card(run_dir)
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert meta["pipeline_tag"] == "text-classification" and meta["language"] == ["en"]
    assert "base_model" not in meta and "datasets" not in meta  # a local model folder and a local CSV: no hub ids
    result = meta["model-index"][0]["results"][0]
    assert {m["type"]: m["value"] for m in result["metrics"]}["accuracy"] == round(test["accuracy"], 4)
    assert f"accuracy {test['accuracy']:.1%}" in body and "95% CI" in body and "untuned model scored" in body
    assert "## Calibration" in body and "| 0 | negative |" in body and 'pipeline("text-classification"' in body
    assert "| max_length | 64 |" in body


def test_hub_names_become_base_model_and_datasets(trained_run, tmp_path):
    import json
    import shutil

    from core.runs.card import card_text

    run = shutil.copytree(trained_run[0].run_dir, tmp_path / "run")
    record = json.loads((run / "config.json").read_text())
    record["config"].update(model="distilbert-base-uncased", dataset="amazon_polarity")
    (run / "config.json").write_text(json.dumps(record))
    meta = yaml.safe_load(card_text(run).split("---\n")[1])
    assert meta["base_model"] == "distilbert-base-uncased" and meta["datasets"] == ["amazon_polarity"]
    assert meta["model-index"][0]["results"][0]["dataset"]["type"] == "amazon_polarity"


def test_a_stopped_run_with_a_model_gets_a_card_too(tiny_config, tmp_path):
    import threading

    from core.events import StepLogged
    from core.training.train import train

    stop = threading.Event()
    result = train(tiny_config.replace(epochs=2, logging_steps=1, baseline=False), tmp_path,
                   on_event=lambda e: stop.set() if isinstance(e, StepLogged) and e.step >= 3 else None,
                   stop_event=stop)
    assert result.status == "stopped"
    meta, body = _card(result.run_dir)
    assert meta["pipeline_tag"] == "text-classification" and "## How to use" in body
