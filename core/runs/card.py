"""The model card: `model/README.md` in Hugging Face's format, written from a run's own files.

YAML metadata first (pipeline tag, base model, datasets, language, metrics, model-index results), then
what a reader of the card needs: how the model was trained, on what, how well it does against the
untuned model, how far its confidences can be trusted, its labels, and how to load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.files import read_object, write_text_atomic
from core.runs import layout

LOCAL_DATA = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt")
LANGUAGE = "en"
"""The language the card declares: sentitune's samples, presets and defaults are English sentiment data."""


def _is_local(name: str) -> bool:
    path = Path(name).expanduser()
    return path.suffix.lower() in LOCAL_DATA or path.is_absolute() or path.exists() or name.startswith(".")


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "—"


def card_text(run_dir: str | Path, repo_id: str | None = None) -> str:
    """The model card of the run in `run_dir` (its config.json and metrics.json); `repo_id`: where it is loaded
    from in the usage example (default the run's model folder)."""
    import yaml

    run_dir = Path(run_dir)
    record = read_object(run_dir / layout.CONFIG)
    metrics = read_object(run_dir / layout.METRICS) if (run_dir / layout.METRICS).exists() else {}
    config = record.get("config") or {}
    model, dataset = str(config.get("model", "")), str(config.get("dataset", ""))
    labels = list(record.get("label_names") or [])
    test = metrics.get("test") or {}
    baseline = metrics.get("baseline") or {}
    calibration = metrics.get("calibration") or {}
    hub_model, hub_data = not _is_local(model), not _is_local(dataset)

    meta: dict[str, Any] = {"pipeline_tag": "text-classification", "library_name": "transformers",
                            "language": [LANGUAGE], "tags": ["sentiment-analysis", "sentitune"]}
    if hub_model:
        meta["base_model"] = model
    if hub_data:
        meta["datasets"] = [dataset]
    names = (("accuracy", "Test accuracy"), ("f1", "Test F1"), ("precision", "Test precision"),
             ("recall", "Test recall"))
    reported = [(key, name) for key, name in names if isinstance(test.get(key), (int, float))]
    if reported:
        meta["metrics"] = [key for key, _ in reported]
        data_ref = {"name": Path(dataset).name if not hub_data else dataset,
                    "type": dataset if hub_data else "local-file", "split": "test"}
        meta["model-index"] = [{"name": run_dir.name, "results": [{
            "task": {"type": "text-classification", "name": "Sentiment analysis"},
            "dataset": data_ref,
            "metrics": [{"type": key, "value": round(float(test[key]), 4), "name": name} for key, name in reported],
        }]}]

    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {run_dir.name}", "",
             f"A sentiment classifier fine-tuned with sentitune from `{model}` on `{dataset}`"
             + (f", labels {', '.join(labels)}." if labels else "."), ""]
    lines += ["## Training", "", "| setting | value |", "| --- | --- |"]
    for key in ("model", "dataset", "text_columns", "label_column", "max_samples", "val_fraction", "test_fraction",
                "max_length", "epochs", "batch_size", "gradient_accumulation", "learning_rate", "weight_decay",
                "warmup_ratio", "seed", "calibrate"):
        if key in config:
            value = config[key]
            lines.append(f"| {key} | {', '.join(value) if isinstance(value, list) else value} |")
    lines += ["", f"Device: {record.get('device', '?')}, precision {record.get('precision', '?')}, "
                  f"{record.get('processes', 1)} process(es); trained with "
              + ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items()) + ".", ""]
    lines += ["## Data", ""]
    cleaning = record.get("cleaning") or {}
    if cleaning:
        lines.append("Cleaning: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in cleaning.items()) + ".")
    samples = record.get("samples") or {}
    if samples:
        lines.append("Split (stratified, seeded): " + ", ".join(f"{k} {v}" for k, v in samples.items()) + ".")
    lines.append("")
    lines += ["## Evaluation", ""]
    if test:
        lines.append(f"On the held-out test split ({test.get('n', '?')} reviews): accuracy {_pct(test.get('accuracy'))}"
                     + (f" (95% CI {_pct(test.get('accuracy_ci_low'))}–{_pct(test.get('accuracy_ci_high'))})"
                        if "accuracy_ci_low" in test else "")
                     + f", precision {_pct(test.get('precision'))}, recall {_pct(test.get('recall'))}, "
                       f"F1 {_pct(test.get('f1'))} ({test.get('average', 'binary')}).")
        if baseline:
            lines.append(f"The untuned model scored accuracy {_pct(baseline.get('accuracy'))}, F1 "
                         f"{_pct(baseline.get('f1'))} on {baseline.get('n', '?')} test reviews.")
    else:
        lines.append("This model was not tested (the run was stopped while it was being scored).")
    lines.append("")
    if calibration:
        lines += ["## Calibration", "",
                  f"Confidences are calibrated by a temperature of {calibration.get('temperature', 1):.3f}, fitted on "
                  f"the validation split (`calibration.json`): expected calibration error on the test split "
                  f"{_pct(calibration.get('ece_before'))} before, {_pct(calibration.get('ece_after'))} after. "
                  "`transformers.pipeline` does not apply it; divide the logits by it for calibrated probabilities.",
                  ""]
    if labels:
        lines += ["## Labels", "", "| id | label |", "| --- | --- |",
                  *[f"| {i} | {name} |" for i, name in enumerate(labels)], ""]
    source = repo_id or f"{run_dir.name}/model"
    lines += ["## How to use", "", "```python", "from transformers import pipeline", "",
              f'classifier = pipeline("text-classification", model="{source}", truncation=True)',
              'print(classifier("A warm, funny and beautifully acted film."))', "```", "",
              f"Reviews are cut at {config.get('max_length', '?')} tokens, as in training (the tokenizer records it).",
              ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path) -> Path:
    """Write `model/README.md` for the run in `run_dir`; returns its path."""
    path = Path(run_dir) / layout.MODEL / "README.md"
    write_text_atomic(path, card_text(run_dir))
    return path
