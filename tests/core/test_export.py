"""ONNX export: the export predicts what the PyTorch model predicts, runs anywhere `predict` runs, and a failed
export leaves the last good one in place."""

from __future__ import annotations

import json
import shutil

import pytest

from core.cli import main
from core.predict import Predictor
from tests.tiny import reviews_frame

pytestmark = pytest.mark.xdist_group("onnx-export")  # one worker exports once for the whole module


@pytest.fixture(scope="module")
def run_copy(trained_run, tmp_path_factory):
    """A copy of the shared finished run, so exports written into it leave that run as it was."""
    copy = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(trained_run[0].run_dir, copy)
    return copy


@pytest.fixture(scope="module")
def exported(run_copy):
    from core.export import export_onnx

    return export_onnx(run_copy)


def _labels(predictor: Predictor, texts: list[str]) -> list[str]:
    return [p.label for p in predictor.predict(texts)]


TEXTS = list(reviews_frame(400, seed=11)["text"])  # reviews the tiny model never saw


def test_export_writes_a_self_describing_onnx_folder(exported, run_copy):
    folder = run_copy / "onnx"
    assert exported.path == folder and not exported.quantized
    assert {"model.onnx", "config.json", "tokenizer.json", "export.json"} <= {p.name for p in folder.iterdir()}
    record = json.loads((folder / "export.json").read_text())
    assert record["quantized"] is False and record["labels"] == ["negative", "positive"]
    assert record["checked_reviews"] == exported.checked == len((run_copy / "test_predictions.jsonl").read_text()
                                                                 .splitlines())
    assert not list(run_copy.glob(".onnx*"))  # no partial folder left behind


def test_onnx_labels_agree_with_the_torch_model(exported, run_copy):
    torch_model, onnx_model = Predictor(run_copy), Predictor(exported.path)
    assert onnx_model.backend == "ONNX" and onnx_model.device.type == "cpu"
    assert exported.agreement >= 0.99  # on the run's test split, measured by the export itself
    agree = sum(a == b for a, b in zip(_labels(torch_model, TEXTS), _labels(onnx_model, TEXTS))) / len(TEXTS)
    assert agree >= 0.99
    a, b = torch_model.predict(TEXTS[:50]), onnx_model.predict(TEXTS[:50])
    assert max(abs(x.confidence - y.confidence) for x, y in zip(a, b)) < 1e-4
    # What it truncates to and how it calibrates travel with it, without the run folder.
    assert onnx_model.max_length == torch_model.max_length and onnx_model.temperature == torch_model.temperature


def test_quantized_export_through_the_cli_agrees_and_predicts(exported, run_copy, tmp_path, capsys, monkeypatch):
    dest = tmp_path / "int8"
    here = tmp_path / "cwd"  # the exporter and the quantizer must write nothing into the current directory
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["export", str(run_copy), "--onnx", "--quantize", "--to", str(dest), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["quantized"] is True and line["path"] == str(dest) and line["label_agreement"] >= 0.98
    assert (dest / "model.onnx").stat().st_size < (exported.path / "model.onnx").stat().st_size
    int8 = Predictor(dest)
    assert int8.backend == "ONNX int8"
    agree = sum(a == b for a, b in zip(_labels(Predictor(run_copy), TEXTS), _labels(int8, TEXTS))) / len(TEXTS)
    assert agree >= 0.98
    assert main(["predict", str(dest), "wonderful excellent superb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["label"] == "positive"
    assert list(here.iterdir()) == []


def test_a_failed_export_keeps_the_last_good_one(exported, run_copy, monkeypatch, capsys):
    import core.export

    before = (exported.path / "model.onnx").read_bytes()

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.export, "_write_onnx", broken)
    assert main(["export", str(run_copy), "--onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "--to" in err[0]
    assert (exported.path / "model.onnx").read_bytes() == before
    assert not list(run_copy.glob(".onnx*"))


def test_an_export_is_replaced_but_a_folder_with_other_files_is_not(exported, run_copy, tmp_path):
    from core.errors import ModelError
    from core.export import export_onnx

    again = shutil.copytree(exported.path, tmp_path / "again")
    assert export_onnx(run_copy, again, check_limit=20).checked == 20  # an earlier export is replaced
    assert "files" in json.loads((again / "export.json").read_text())
    (again / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="holds more than an ONNX export"):
        export_onnx(run_copy, again)
    assert (again / "notes.txt").read_text() == "mine" and (again / "model.onnx").is_file()


def test_explanations_ask_for_the_torch_model(exported):
    from core.errors import PredictError
    from core.explain import explain

    with pytest.raises(PredictError, match="PyTorch model"):
        explain(Predictor(exported.path), "great")


def test_a_damaged_onnx_file_says_to_export_again(exported, tmp_path):
    from core.errors import ModelError

    copy = tmp_path / "onnx"
    shutil.copytree(exported.path, copy)
    (copy / "model.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="export it again"):
        Predictor(copy)


def test_missing_onnx_packages_are_named_with_the_pip_command(run_copy, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert main(["export", str(run_copy), "--onnx", "--to", str(run_copy / "elsewhere")]) == 2
    err = capsys.readouterr().err
    assert "onnxscript" in err and "pip install 'sentitune[onnx]'" in err and not (run_copy / "elsewhere").exists()


def test_an_export_is_refused_while_its_run_is_resumed_and_marked_once_the_model_is_newer(exported, run_copy, capsys):
    """A resume replaces the model: an export made meanwhile would be of the old one, and one made before it is
    stale once the newer model is saved (said by predict and shown on F5)."""
    import os

    from core.errors import CoreError
    from core.export import export_onnx
    from core.runs.lock import RunLock

    with RunLock(run_copy):
        with pytest.raises(CoreError, match="still running in another process"):
            export_onnx(run_copy)
    assert not Predictor(exported.path).stale
    weights, metrics = run_copy / "model" / "model.safetensors", run_copy / "metrics.json"
    stat, record = weights.stat(), metrics.read_text()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # saved again, as a resume does
    assert not Predictor(exported.path).stale  # the same checkpoint saved again: the same model
    kept = json.loads(record)
    kept["kept"]["step"] += 1
    metrics.write_text(json.dumps(kept))  # another checkpoint kept
    try:
        assert Predictor(exported.path).stale
        assert main(["predict", str(exported.path), "great", "--json"]) == 0
        assert "older than its run's model: export it again" in capsys.readouterr().err
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        metrics.write_text(record)
