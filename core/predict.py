"""Predict sentiment with a saved model: from a run folder or a model folder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from core.errors import CoreError, ModelError, PredictError
from core.runs import layout


@dataclass(frozen=True)
class Prediction:
    """One review's predicted label, its softmax confidence, and every class's probability."""

    text: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    true_label: str | None = None
    """The label a labelled file gave the review, when it came from one."""

    def to_dict(self) -> dict:
        out = {"text": self.text, "label": self.label, "confidence": self.confidence, "probabilities": self.probabilities}
        if self.true_label is not None:
            out["true_label"] = self.true_label
        return out


def model_dir_of(path: str | Path) -> Path:
    """The model folder of a run folder, or `path` itself when it is a model folder (PyTorch or ONNX)."""
    path = Path(path).expanduser()
    if (path / layout.ONNX_MODEL).is_file():
        return path
    if (path / layout.MODEL / "config.json").exists():
        return path / layout.MODEL
    if (path / "config.json").exists() and not (path / layout.STATUS).exists():
        return path
    if (path / layout.STATUS).exists():
        from core.runs.store import run_info

        if run_info(path).status in (layout.RunStatus.RUNNING, layout.RunStatus.STARTING):
            raise ModelError(f"run {path.name} is still training: its model is saved when it ends "
                             f"(`sentitune stop {path.name}` ends it now, saved)")
        raise ModelError(f"run {path.name} has no saved model (it did not finish); pick a finished run")
    if not path.exists():
        raise ModelError(f"no run or model folder at {path}")
    raise ModelError(f"{path} is neither a run folder nor a model folder (no config.json)")


class OnnxClassifier:
    """An exported ONNX model run by ONNX Runtime, called like a transformers classifier (logits out)."""

    def __init__(self, folder: Path):
        try:
            import onnxruntime
        except ImportError:
            raise ModelError(f"{folder} is an ONNX model and ONNX Runtime is not installed; "
                             "pip install 'sentitune[onnx]'") from None
        from transformers import AutoConfig

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings would land on the user's terminal
        try:
            self.config = AutoConfig.from_pretrained(str(folder))
            self.session = onnxruntime.InferenceSession(str(folder / layout.ONNX_MODEL), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged model.onnx, a missing config.json
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the ONNX model in {folder}: {first}; export it again "
                             "(sentitune export RUN --onnx)") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, **encoded):
        import torch

        feed = {name: encoded[name].cpu().numpy().astype("int64") for name in self.inputs}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feed)[0]))


class Predictor:
    """Loads a classifier once and predicts batches on the best available device (ONNX exports: on the CPU)."""

    def __init__(self, path: str | Path, device: str | None = None, calibrated: bool = True):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from core.training.logs import capture_library_logs
        from core.training.model import resolve_device, serving_max_length, use_tf32

        self.model_dir = model_dir_of(path)
        if not any((self.model_dir / f).exists() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
            raise ModelError(f"no tokenizer in {self.model_dir}; save one with tokenizer.save_pretrained there")
        self.onnx = (self.model_dir / layout.ONNX_MODEL).is_file()
        """An ONNX export, run with ONNX Runtime: predictions only (explanations need the PyTorch model)."""
        try:
            with capture_library_logs():  # no progress bars or warnings on the user's terminal
                self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), trust_remote_code=False)
        except Exception as exc:  # a tokenizer_config.json left without the files it names, a damaged tokenizer.json
            first = str(exc).strip().splitlines()[0].rstrip(": ") if str(exc).strip() else type(exc).__name__
            again = "export it again" if self.onnx else "save the model there again"
            raise ModelError(f"cannot load the tokenizer in {self.model_dir} ({first}); its files are incomplete "
                             f"or damaged: {again}") from None
        try:
            with capture_library_logs():
                # float32 whatever the dtype it was saved in: predictions match the ones the run scored
                self.model = OnnxClassifier(self.model_dir) if self.onnx else \
                    AutoModelForSequenceClassification.from_pretrained(str(self.model_dir), trust_remote_code=False,
                                                                       dtype=torch.float32)
        except CoreError:
            raise
        except Exception as exc:  # OSError, ValueError, a SafetensorError for damaged weights...
            mismatch = _label_mismatch(self.model_dir)  # transformers says only "look at the above report!"
            if mismatch:
                raise ModelError(mismatch) from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "weights_only" in first:  # torch's advice to unpickle anything: never to be passed on
                first = "its weights hold more than tensors (damaged, or not saved by transformers)"
            raise ModelError(f"cannot load the model in {self.model_dir}: {first}") from None
        self.device = torch.device("cpu" if self.onnx else resolve_device(device or "auto"))
        use_tf32(self.device.type)
        if not self.onnx:
            self.model.to(self.device).eval()
        config = self.model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]
        self.max_length = serving_max_length(self.model_dir, self.tokenizer, config)
        self.backend = export_kind(self.model_dir) if self.onnx else "PyTorch"
        self.stale = self.onnx and export_is_stale(self.model_dir)
        """An export older than the model its run has now (STALE_EXPORT says what to do)."""
        self.lock = threading.RLock()
        """Held while the model runs: an explanation hooks its embedding layer, which a prediction must not meet."""
        self.temperature = _temperature(self.model_dir) if calibrated else None
        """Logits are divided by it before the softmax (the run's calibration); None: raw softmax."""
        self._twin: Predictor | None = None
        self._twin_lock = threading.Lock()

    def twin(self) -> Predictor:
        """A copy of this predictor with its own weights, tokenizer and lock, made on first use: a long job on it
        (an explanation holds its model for seconds) never makes a prediction here wait. It costs the model's
        memory once more. An ONNX export is its own twin (it cannot be explained)."""
        import copy

        if self.onnx:
            return self
        with self._twin_lock:
            if self._twin is None:
                twin = copy.copy(self)
                # A fast tokenizer used from two threads at once raises "Already borrowed": each has its own.
                twin.model, twin.tokenizer = copy.deepcopy(self.model), copy.deepcopy(self.tokenizer)
                twin.lock, twin._twin_lock = threading.RLock(), threading.Lock()
                self._twin = twin
            return self._twin

    def predict(self, texts: list[str] | str, batch_size: int = 32,
                on_progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """Predictions for `texts`, in order; an empty text is an error. `on_progress(done, total)` follows long lists."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = [_valid_text(t) for t in texts]
        cleaned = [" ".join(t.split()) for t in texts]
        for i, text in enumerate(cleaned):
            if not text:
                where = "" if len(cleaned) == 1 else f" (text {i + 1})"
                raise PredictError(f"the review is empty{where}; type some text to predict")
        # Batches of similar length pad less; results go back into input order.
        order = sorted(range(len(cleaned)), key=lambda i: len(cleaned[i]))
        results: list[Prediction | None] = [None] * len(cleaned)
        with self.lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = self.tokenizer([cleaned[i] for i in idx], truncation=True, max_length=self.max_length,
                                     padding=True, return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.double()
                probs = torch.softmax(logits / (self.temperature or 1.0), dim=-1).cpu().tolist()
                for i, row in zip(idx, probs):
                    best = max(range(len(row)), key=row.__getitem__)
                    results[i] = Prediction(
                        texts[i], self.label_names[best], row[best], dict(zip(self.label_names, row))
                    )
                if on_progress is not None:
                    on_progress(min(start + batch_size, len(order)), len(order))
        return results  # type: ignore[return-value]


def export_kind(folder: Path) -> str:
    """"ONNX" or "ONNX int8" for an export folder, as its record says."""
    return "ONNX int8" if read_export_record(folder).get("quantized") is True else "ONNX"


STALE_EXPORT = "older than its run's model: export it again (sentitune export RUN --onnx)"


def model_stamp(model_dir: Path) -> list[int] | None:
    """When and how large a model's weights were written: changes whenever the model is saved again."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        try:
            st = (Path(model_dir) / name).stat()
        except OSError:
            continue
        return [st.st_mtime_ns, st.st_size]
    return None


def kept_step(model_dir: Path) -> int | None:
    """The step of the evaluation a run's model comes from (metrics.json `kept`), None outside a run."""
    from core.files import read_object

    try:
        step = (read_object(Path(model_dir).parent / layout.METRICS).get("kept") or {}).get("step")
    except (CoreError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def export_is_stale(folder: Path) -> bool:
    """Whether an export in a run folder (RUN/onnx) was made from a model the run has since replaced (a resume
    saved another checkpoint). The kept step tells when both the export and the run recorded one (a resume that
    saves the same checkpoint again changes nothing); else the weights file's time and size. Exports recorded
    before either was kept, or outside a run, cannot tell: False."""
    folder = Path(folder)
    record = read_export_record(folder)
    model_dir = folder.parent / layout.MODEL
    if not (model_dir / "config.json").is_file():
        return False
    step, now = record.get("model_step"), kept_step(model_dir)
    if isinstance(step, int) and now is not None:
        return step != now
    stamp = record.get("model_stamp")
    return isinstance(stamp, list) and model_stamp(model_dir) != stamp


def read_export_record(folder: Path) -> dict:
    """What export.json says about an ONNX folder; empty when it is missing or damaged (it only informs)."""
    from core.files import read_object

    try:
        return read_object(folder / layout.EXPORT_RECORD)
    except CoreError:
        return {}


def _temperature(model_dir: Path) -> float | None:
    """The temperature saved with the model (`calibration.json`), or None for a model without one."""
    from core.files import read_object

    path = model_dir / layout.CALIBRATION
    if not path.exists():
        return None
    try:
        value = read_object(path).get("temperature")
    except CoreError as exc:
        raise ModelError(f"{path} is damaged ({exc}); delete it to use the uncalibrated model") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ModelError(f"{path} holds no positive temperature; delete it to use the uncalibrated model")
    if not TEMPERATURES[0] <= value <= TEMPERATURES[1]:  # 5e-324 turns every confidence into NaN, 1e300 into a tie
        raise ModelError(f"{path} holds a temperature of {value!r}, outside {TEMPERATURES[0]:g} to "
                         f"{TEMPERATURES[1]:g} (a fitted one lies in 0.05 to 20); delete it to use the uncalibrated "
                         "model")
    return float(value)


TEMPERATURES = (0.01, 100.0)
"""The temperatures calibration.json may hold: core.training.calibration fits within 0.05 to 20."""


CLASSIFIER_WEIGHTS = ("classifier.out_proj.weight", "classifier.weight", "score.weight")
"""The output layer of a sequence classifier, by its name in the common architectures."""


def _label_mismatch(model_dir: Path) -> str | None:
    """What is wrong when config.json's id2label lists more or fewer labels than the weights have outputs."""
    import json

    try:
        from safetensors import safe_open

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        labels = config.get("id2label")
        count = len(labels) if isinstance(labels, dict) else config.get("num_labels")
        with safe_open(str(model_dir / "model.safetensors"), framework="np") as weights:
            keys = list(weights.keys())
            name = next((k for suffix in CLASSIFIER_WEIGHTS for k in keys if k == suffix or k.endswith(f".{suffix}")),
                        None)
            if name is None or not isinstance(count, int):
                return None
            outputs = weights.get_slice(name).get_shape()[0]
    except Exception:  # no safetensors weights, a config that is not JSON: the library's own message says more
        return None
    if outputs == count:
        return None
    return (f"the config.json of {model_dir} lists {count} labels in id2label but its weights have {outputs} "
            f"outputs; give config.json the {outputs} labels the model was trained with (id2label and label2id), "
            "or save the model again")


def _valid_text(text) -> str:
    """`text` with lone surrogates (undecodable command-line bytes, broken JSON) as replacement characters."""
    text = str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")  # bytes Python could not decode come back as they were
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


