"""The command line's flags and subcommands, and the config they add up to."""

from __future__ import annotations

import argparse

from core.config import TrainConfig, load_toml
from core.format import printable

COMMANDS = ("train", "predict", "evaluate", "data", "runs", "attach", "stop", "resume", "export", "push", "lr-find",
            "sweep", "doctor")


# Flags that override the config field of the same name.
CONFIG_FLAGS = ("model", "dataset", "text_columns", "label_column", "max_samples", "epochs", "batch_size",
                "learning_rate", "max_length", "seed", "num_processes", "accelerate_config", "report_to", "wait_for_gpu")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line and exit code 2, and takes no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--epoch` must not quietly mean `--epochs`
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, printable(f"sentitune: error: {message} (see {self.prog} --help)") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sentitune", description="Fine-tune and query a sentiment classifier.",
        epilog="With no subcommand, sentitune opens the app: sentitune [--config FILE.toml] [--run RUN] "
               "[--output-dir DIR]",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    parser.subcommands = sub.choices

    def data_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
        p.add_argument("--model", metavar="ID|DIR", help="hub model id or local model folder")
        p.add_argument("--dataset", metavar="ID|FILE", help="hub dataset name or local .csv/.tsv/.json/.jsonl/.parquet")
        p.add_argument("--text-columns", metavar="a,b", help="text columns joined in order")
        p.add_argument("--label-column", metavar="C", help="label column")
        p.add_argument("--max-samples", metavar="N", help="stratified subset size (0 or 'all' for every row)")
        p.add_argument("--max-length", metavar="L", help="max tokens per review")
        p.add_argument("--seed", metavar="S")
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    def training_flags(p: argparse.ArgumentParser, schedule: bool = True) -> None:
        """Train's flags; without `schedule` (lr-find, which sets its own), no --epochs or --learning-rate."""
        data_flags(p)
        if schedule:
            p.add_argument("--epochs", metavar="E")
        p.add_argument("--batch-size", metavar="B")
        if schedule:
            p.add_argument("--learning-rate", metavar="LR")
        p.add_argument("--output-dir", metavar="DIR", default="runs", help="runs folder (default: runs)")
        p.add_argument("--json", action="store_true", help="print each event as one JSON line")

    train = sub.add_parser("train", help="fine-tune a model and save the run")
    training_flags(train)
    train.add_argument("--detach", action="store_true",
                       help="train in a background process that survives logout; print the run folder and return")
    train.add_argument("--wait-for-gpu", action="store_true", default=None,
                       help="when no GPU has the memory the run needs, wait in line for one (else refuse)")
    train.add_argument("--auto-batch", action="store_true",
                       help="on CUDA out of memory, retry with half the batch and twice the accumulation")
    train.add_argument("--num-processes", metavar="N", help="train with N processes (one per GPU) via accelerate")
    train.add_argument("--accelerate-config", metavar="FILE", help="accelerate config YAML (multi-node)")
    train.add_argument("--report-to", metavar="TRACKER",
                       help="also log to none (default), tensorboard (RUN/tensorboard), trackio or wandb")
    train.add_argument("--run-dir", metavar="DIR",
                       help="write the run into DIR instead of a new folder under --output-dir (with two "
                            "machines: the same folder, on a file system both share)")

    def command(name: str, help: str, target: str | None = "run", json_flag: bool = True) -> argparse.ArgumentParser:
        """A subcommand with the flags most share: RUN, --output-dir, --json, --debug."""
        p = sub.add_parser(name, help=help)
        if target:
            p.add_argument(target, metavar="RUN" if target == "run" else "RUN_OR_MODEL_DIR")
        p.add_argument("--output-dir", metavar="DIR", default="runs", help="runs folder (default: runs)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="JSON lines instead of text")
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        return p

    command("attach", "follow a run's progress (Ctrl+C detaches; the run goes on)")
    command("stop", "ask a running run to stop at its next step and save", json_flag=False)
    resume = command("resume", "continue a stopped, failed or interrupted run from its last checkpoint")
    resume.add_argument("--detach", action="store_true", help="resume in a background process")

    predict = command("predict", "predict sentiment with a run's model or a model folder", target="target")
    predict.add_argument("texts", nargs="*", metavar="TEXT")
    predict.add_argument("--file", metavar="FILE", help="a .txt (one review per line) or .csv with a text column")
    predict.add_argument("--save", metavar="OUT.csv", help="also write the predictions to a CSV file")
    predict.add_argument("--explain", action="store_true",
                         help="also score each word: toward the predicted label (+) or away from it (-)")
    predict.add_argument("--raw-confidence", action="store_true",
                         help="the plain softmax, without the temperature the run fitted to calibrate it")

    evaluate = command("evaluate", "score a run's model on its test split or another dataset")
    evaluate.add_argument("--dataset", metavar="ID|FILE", help="evaluate on every row of this dataset instead")

    doctor = command("doctor", "find the reviews of a run's data whose labels look wrong, ambiguous ones, near "
                               "copies and test reviews that leak from training")
    doctor.add_argument("--top", type=int, metavar="N", help="only the N most suspicious rows")
    doctor.add_argument("--folds", type=int, metavar="K", help="check the training labels on out-of-sample "
                        "probabilities: fine-tune K fold models with the run's settings first (K trainings on "
                        "(K-1)/K of its training split; kept in the run folder, and used by the next doctor unless --folds 0)")
    doctor.add_argument("--write-clean", metavar="OUT.csv", help="write a copy of the data without the rows listed "
                        "(or relabelled, with --relabel), and OUT.csv.changes.json listing every change")
    how = doctor.add_mutually_exclusive_group()
    how.add_argument("--drop", action="store_true", help="with --write-clean: drop every row listed (the default)")
    how.add_argument("--relabel", action="store_true", help="with --write-clean: give label errors the suggested "
                     "label, drop copies and leaks, keep ambiguous rows")

    data = sub.add_parser("data", help="load a dataset and print preview statistics")
    data_flags(data)
    data.add_argument("--json", action="store_true")

    command("runs", "list runs with status and headline metrics", target=None)

    export = command("export", "write a run's model as ONNX for ONNX Runtime (into RUN/onnx)", target="target")
    export.add_argument("--onnx", action="store_true", help="export to ONNX (the one format so far; required)")
    export.add_argument("--quantize", action="store_true", help="int8 weights (dynamic quantization): smaller, "
                        "faster on CPUs")
    export.add_argument("--to", metavar="DIR", help="write the export here instead of RUN/onnx")

    finder = sub.add_parser("lr-find", help="find a learning rate: a short range test on the training split")
    training_flags(finder, schedule=False)
    finder.add_argument("--steps", metavar="N", type=int, help="steps of the test (default: 50 per decade of the "
                        "range, 250 for the default one)")
    finder.add_argument("--start-lr", metavar="LR", type=float, default=1e-6, help="first learning rate (1e-6)")
    finder.add_argument("--end-lr", metavar="LR", type=float, default=0.1, help="last learning rate (0.1)")

    sweep = sub.add_parser("sweep", help="one run per setting point, ranked by validation macro F1")
    training_flags(sweep)
    sweep.add_argument("--grid", metavar="NAME=A,B", action="append", default=[],
                       help="values of a setting to try (repeat for more settings; NAME=LOW:HIGH, a range, with "
                            "--trials or --random)")
    sweep.add_argument("--random", metavar="N", type=int, help="N random points from the grid's values and ranges")
    sweep.add_argument("--trials", metavar="N", type=int, help="N points chosen by Optuna's TPE sampler from the "
                       "grid's values and ranges, each from how the earlier ones did")
    sweep.add_argument("--prune", action="store_true", help="stop a point after an evaluation when it is behind the "
                       "median of the finished points at the same quarter epoch (it ends 'pruned')")
    sweep.add_argument("--workers", metavar="N", type=int, help="train N points at a time, each on its own GPU "
                       "(default: one per GPU; on a CPU one, or the cores divided between N)")
    sweep.add_argument("--detach", action="store_true", help="run the sweep in background processes")
    sweep.add_argument("--resume", metavar="SWEEP", help="go on with the points of an interrupted or stopped sweep")
    sweep.add_argument("--join", metavar="SWEEP", help="add a worker to a sweep from another shell or machine that "
                       "sees the runs folder")
    sweep.add_argument("--show", metavar="SWEEP", nargs="?", const="",
                       help="print a sweep's runs ranked by validation macro F1 (no SWEEP: list the sweeps)")

    push = command("push", "upload a run's model and its model card to the Hugging Face Hub", json_flag=True)
    push.add_argument("--repo", metavar="USER/NAME", required=True, help="the model repository (created if new)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    base = load_toml(args.config) if getattr(args, "config", None) else TrainConfig()
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS if getattr(args, name, None) is not None}
    return TrainConfig.from_dict(overrides, base=base) if overrides else base
