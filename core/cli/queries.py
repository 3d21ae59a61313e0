"""Commands that read: predict, evaluate, data, runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from core.cli.output import ProgressLine, json_line, say
from core.cli.parser import config_from_args
from core.format import format_confusion, format_metrics, one_line


def cmd_predict(args: argparse.Namespace) -> int:
    from core.errors import PredictError
    from core.predict import Predictor
    from core.review_files import (
        check_save_path,
        read_review_file,
        summarize_batch,
        trained_text_columns,
        true_labels,
        write_predictions_csv,
    )
    from core.runs.store import resolve_run

    save = check_save_path(args.save, args.file, instead="leave out --save to print to the terminal") \
        if args.save else None  # before any work is done
    texts = list(args.texts)
    file_labels = None
    target = Path(args.target)
    if not target.exists():
        target = resolve_run(args.target, args.output_dir)
    if args.file:
        reviews = read_review_file(args.file, trained_text_columns(target))
        texts += reviews.texts
        if reviews.labels and not args.texts:
            file_labels = reviews.labels
    if not texts and not sys.stdin.isatty():
        texts = [line for line in _read_stdin().splitlines() if line.strip()]
    if not texts:
        raise PredictError("give reviews to predict: sentitune predict RUN \"great film\" (or --file reviews.txt)")
    predictor = Predictor(target, calibrated=not args.raw_confidence)
    if predictor.stale:
        from core.predict import STALE_EXPORT

        say(f"sentitune: note: {predictor.model_dir} is {STALE_EXPORT}", file=sys.stderr)
    predictions = predictor.predict(texts)
    truth = true_labels(file_labels, predictor.label_names) if file_labels else None
    if truth is not None:  # a labelled file: kept with each prediction, and scored below
        predictions = [dataclasses.replace(p, true_label=t) for p, t in zip(predictions, truth)]
    explanations = _explanations(predictor, predictions) if args.explain else None
    for i, p in enumerate(predictions):
        if args.json:
            line = p.to_dict()
            if explanations:
                line["explanation"] = explanations[i].to_dict()
                line["explanation_delta"] = explanations[i].delta  # IG's convergence gap, in log-odds units
                line["explanation_steps"] = explanations[i].steps
            print(json_line(line))
        else:
            say(f"{p.label:<10} {p.confidence:6.1%}  {one_line(p.text, 70)}")
            if explanations:
                _print_explanation(explanations[i])
    if truth is not None and not args.json:
        scores = summarize_batch(predictions, label_names=predictor.label_names).scores
        say(f"against the file's labels: {format_metrics(scores)}")
        say(format_confusion(scores["confusion_matrix"], scores["label_names"]))
    elif file_labels and not args.json:
        say("the file's labels do not match the model's, so the predictions are not scored")
    if save:
        write_predictions_csv(predictions, save)
        if not args.json:
            say(f"saved {len(predictions)} predictions to {save}")
    return 0


def _explanations(predictor, predictions) -> list:
    from core.explain import explain

    progress = ProgressLine("explained", min_total=20) if len(predictions) > 1 else None
    out = []
    for i, p in enumerate(predictions):
        out.append(explain(predictor, p.text))
        if progress:
            progress(i + 1, len(predictions))
    return out


def _print_explanation(explanation) -> None:
    """The review with each word green (toward the label) or red (away) on a terminal; the top words always."""
    from core.format import printable

    if sys.stdout.isatty():
        strongest = max((abs(w.score) for w in explanation.words), default=0.0) or 1.0
        coloured = []
        for i, w in enumerate(explanation.words):
            share = abs(w.score) / strongest
            colour = "" if share < 0.15 else ("\x1b[32m" if w.score > 0 else "\x1b[31m")
            bold = "\x1b[1m" if share >= 0.6 else ""
            word = f"{bold}{colour}{printable(w.word)}\x1b[0m" if colour else printable(w.word)
            coloured.append((" " if i and w.spaced else "") + word)
        print("  " + "".join(coloured), flush=True)

    def listed(words) -> str:
        return ", ".join(f"{printable(explanation.name(w))} {w.score:+.2f}" for w in words
                         if abs(w.score) >= 0.005) or "none"

    say(f"  toward: {listed(explanation.top(5))} · away: {listed(explanation.top(5, toward=False))}"
        + (" (cut at max_length)" if explanation.truncated else "")
        + f" · IG delta {explanation.delta:.3f} after {explanation.steps} steps")


def _read_stdin() -> str:
    """Standard input as text, whatever its encoding (bytes that fit none become replacement characters)."""
    from core.textfile import decode_lenient

    buffer = getattr(sys.stdin, "buffer", None)
    return decode_lenient(buffer.read()) if buffer is not None else sys.stdin.read()


def cmd_doctor(args: argparse.Namespace) -> int:
    from core.doctor import diagnose, write_clean
    from core.errors import ConfigError
    from core.runs.store import resolve_run

    if args.top is not None and args.top < 1:
        raise ConfigError({"top": "must be at least 1"})
    if args.folds:
        from core.folds import check_folds

        check_folds(args.folds)
    run = resolve_run(args.run, args.output_dir)
    diagnosis = diagnose(run, folds=args.folds, on_progress=lambda line: say(line, file=sys.stderr))
    findings = diagnosis.findings[:args.top] if args.top else diagnosis.findings
    for note in diagnosis.notes:
        say(f"sentitune: note: {note}", file=sys.stderr)
    if args.json:
        for finding in findings:
            print(json_line(finding.to_dict()))
    else:
        counts = {k: sum(f.kind == k for f in diagnosis.findings) for k in ("label_error", "ambiguous",
                                                                          "near_duplicate", "leak")}
        say(f"{run.name}: {len(diagnosis.findings)} suspicious rows ("
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) + ")"
            + (f"; the {len(findings)} most suspicious:" if len(findings) < len(diagnosis.findings) else ""))
        for f in findings:
            suggested = f" -> {f.suggested_label}" if f.suggested_label else ""
            say(f"{f.score:5.2f} {f.kind:<14} {f.split:<10} row {f.row:<6} {f.label}{suggested}  "
                f"{one_line(f.text, 60)}")
            say(f"      {f.reason}")
        if diagnosis.leaked_test_rows and diagnosis.test_accuracy_without_leaks is not None:
            say(f"test accuracy {diagnosis.test_accuracy:.4f}; without the {diagnosis.leaked_test_rows} leaked "
                f"test reviews {diagnosis.test_accuracy_without_leaks:.4f}")
    if args.write_clean:
        chosen = [f for f in findings if not (args.relabel and f.kind == "ambiguous")]  # --relabel keeps those
        sidecar = write_clean(run, chosen, args.write_clean, relabel=args.relabel)
        relabelled = sum(c["change"] == "relabelled" for c in sidecar["changes"])
        say(f"wrote {args.write_clean}: {sidecar['rows_written']} rows ({len(sidecar['changes']) - relabelled} "
            f"dropped, {relabelled} relabelled; every change in {args.write_clean}.changes.json). Train on it with "
            f"sentitune train --dataset {args.write_clean}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluate import evaluate_run
    from core.runs.store import load_run

    report = evaluate_run(load_run(args.run, args.output_dir), args.dataset, on_progress=ProgressLine("scored"))
    if args.json:
        print(json_line(report))
        return 0
    say(f"{report['dataset']}: {report['n']} reviews")
    say(format_metrics(report))
    say(format_confusion(report["confusion_matrix"], report["label_names"]))
    if report.get("recorded"):
        calibrated = " (with the temperature fitted on its validation split)" if report.get("temperature") else ""
        say(f"recorded as the test of run {Path(args.run).name}{calibrated}: its test had been stopped")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from core.data.stats import build_preview
    from core.training.model import load_tokenizer

    config = config_from_args(args)
    preview = build_preview(config, load_tokenizer)
    data, stats, note = preview.data, preview.stats, preview.token_note
    if args.json:
        from dataclasses import asdict

        print(json.dumps({"source": data.source, "notes": data.notes, "cleaning": asdict(data.cleaning),
                          "label_names": data.label_names, **asdict(stats)}))
        return 0
    say(f"source: {data.source}")
    for line in data.notes:
        say(line)
    say("cleaning: " + "; ".join(data.cleaning.lines()))
    say("split       rows  " + "  ".join(f"{n:>10}" for n in data.label_names))
    for split, count in stats.rows.items():
        say(f"{split:<10} {count:>5}  " + "  ".join(f"{stats.balance[split][n]:>10}" for n in data.label_names))
    c = stats.chars
    say(f"characters: mean {c.mean:.0f}, median {c.p50:.0f}, p95 {c.p95:.0f}, max {c.max}")
    if stats.tokens:
        t = stats.tokens
        say(f"tokens: mean {t.mean:.0f}, median {t.p50:.0f}, p95 {t.p95:.0f}, max {t.max}; "
              f"{stats.truncated_share:.1%} truncated at max_length {config.max_length}")
    if note:
        say(note)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs.store import list_runs

    runs = list_runs(args.output_dir)
    if args.json:
        for r in runs:
            print(json_line({**r.__dict__, "path": str(r.path), "name": r.name}))
        return 0
    if not runs:
        say(f"no runs yet in {args.output_dir}/")
        return 0

    def three_places(v):
        return f"{v:.3f}" if v is not None else "-"

    say(f"{'run':<52} {'status':<10} {'val acc':>7} {'val f1':>7} {'test acc':>8} {'test f1':>7}")
    for r in runs:
        say(f"{r.name:<52} {r.status:<10} {three_places(r.val_accuracy):>7} {three_places(r.val_f1):>7} "
              f"{three_places(r.test_accuracy):>8} {three_places(r.test_f1):>7}")
    return 0
