"""The model card: `model/README.md` in Hugging Face's format, written from a run's own files.

YAML metadata first (pipeline tag, base model, datasets, language, metrics, model-index results), then
what a reader of the card needs: how the model was trained, on what, how well it does against the
untuned model, how far its confidences can be trusted, its labels, and how to load it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.files import read_object, write_text_atomic
from core.format import printable
from core.runs import layout

LOCAL_DATA = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt")
LANGUAGE = "en"
"""The language the card declares: sentitune's samples, presets and defaults are English sentiment data."""


def _is_local(name: str) -> bool:
    path = Path(name).expanduser()
    return path.suffix.lower() in LOCAL_DATA or path.is_absolute() or path.exists() or name.startswith(".")


def _text(value: Any) -> str:
    """User text (a label, a model or dataset name, a column) as the card shows it: one line, control characters
    made visible, so `cat README.md` cannot set the terminal's title or colours."""
    return printable(" ".join(str(value).split()))


class _Quoted(str):
    """A YAML value of the user's: always double-quoted, so no YAML reader takes it for a number, a date, a
    boolean or more YAML."""


def _yaml(meta: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_Quoted, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value),
                                                                                   style='"'))
    return yaml.dump(meta, Dumper=Dumper, sort_keys=False, allow_unicode=True).rstrip()


def _cell(value: Any) -> str:
    """`_text` for a Markdown table cell: a `|` would end the cell."""
    return _text(value).replace("|", "\\|")


def _code(value: Any) -> str:
    """`_text` as inline code, fenced by more backticks than it holds in a row."""
    text = _text(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "—"


def card_text(run_dir: str | Path, repo_id: str | None = None) -> str:
    """The model card of the run in `run_dir` (its config.json and metrics.json); `repo_id`: where it is loaded
    from in the usage example (default the run's model folder)."""
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
        meta["base_model"] = _Quoted(_text(model))
    if hub_data:
        meta["datasets"] = [_Quoted(_text(dataset))]
    names = (("accuracy", "Test accuracy"), ("f1", "Test F1"), ("precision", "Test precision"),
             ("recall", "Test recall"))
    reported = [(key, name) for key, name in names if isinstance(test.get(key), (int, float))]
    if reported:
        meta["metrics"] = [key for key, _ in reported]
        data_ref = {"name": _Quoted(_text(Path(dataset).name if not hub_data else dataset)),
                    "type": _Quoted(_text(dataset)) if hub_data else "local-file", "split": "test"}
        meta["model-index"] = [{"name": _Quoted(_text(run_dir.name)), "results": [{
            "task": {"type": "text-classification", "name": "Sentiment analysis"},
            "dataset": data_ref,
            "metrics": [{"type": key, "value": round(float(test[key]), 4), "name": name} for key, name in reported],
        }]}]

    # Every string a user chose (labels, names, columns) goes in through _text, _cell, _code or _Quoted.
    lines = ["---", _yaml(meta), "---", "",
             f"# {_text(run_dir.name)}", "",
             f"A sentiment classifier fine-tuned with sentitune from {_code(model)} on {_code(dataset)}"
             + (f", labels {', '.join(_text(label) for label in labels)}." if labels else "."), ""]
    lines += ["## Training", "", "| setting | value |", "| --- | --- |"]
    for key in ("model", "dataset", "text_columns", "label_column", "max_samples", "val_fraction", "test_fraction",
                "max_length", "epochs", "batch_size", "gradient_accumulation", "learning_rate", "weight_decay",
                "warmup_ratio", "seed", "calibrate"):
        if key in config:
            value = config[key]
            lines.append(f"| {key} | {_cell(', '.join(map(str, value)) if isinstance(value, list) else value)} |")
    lines += ["", _text(f"Device: {record.get('device', '?')}, precision {record.get('precision', '?')}, "
                        f"{record.get('processes', 1)} process(es); trained with "
                        + ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items()) + "."), ""]
    lines += ["## Data", ""]
    cleaning = record.get("cleaning") or {}
    if cleaning:
        lines.append(_text("Cleaning: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in cleaning.items()) + "."))
    samples = record.get("samples") or {}
    if samples:
        lines.append(_text("Split (stratified, seeded): " + ", ".join(f"{k} {v}" for k, v in samples.items()) + "."))
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
    if calibration and isinstance(calibration.get("temperature"), (int, float)):
        lines += ["## Calibration", "",
                  f"Confidences are calibrated by a temperature of {calibration['temperature']:.3f}, fitted on "
                  f"the validation split (`calibration.json`): expected calibration error on the test split "
                  f"{_pct(calibration.get('ece_before'))} before, {_pct(calibration.get('ece_after'))} after. "
                  "`transformers.pipeline` does not apply it; divide the logits by it for calibrated probabilities.",
                  ""]
    elif calibration:
        lines += ["## Calibration", "",
                  f"No temperature is applied ({_cell(str(calibration.get('reason') or 'not applied'))}): the "
                  f"confidences are the plain softmax; expected calibration error on the test split "
                  f"{_pct(calibration.get('ece_before'))}.", ""]
    if labels:
        lines += ["## Labels", "", "| id | label |", "| --- | --- |",
                  *[f"| {i} | {_cell(name)} |" for i, name in enumerate(labels)], ""]
    source = repo_id or f"{run_dir.name}/model"
    lines += ["## How to use", "", "```python", "from transformers import pipeline", "",
              f'classifier = pipeline("text-classification", model={json.dumps(_text(source))}, truncation=True)',
              'print(classifier("A warm, funny and beautifully acted film."))', "```", "",
              f"Reviews are cut at {config.get('max_length', '?')} tokens, as in training (the tokenizer records it).",
              ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path) -> Path:
    """Write `model/README.md` for the run in `run_dir`; returns its path."""
    path = Path(run_dir) / layout.MODEL / "README.md"
    write_text_atomic(path, card_text(run_dir))
    return path
