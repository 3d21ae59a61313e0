"""Files in other encodings are read (and say so); binary data and nested values are refused in one line."""

import io
import json

import pandas as pd
import pytest

from core.cli import main
from core.config import TrainConfig
from core.data.clean import prepare
from core.errors import DatasetError, PredictError
from core.review_files import read_reviews
from core.textfile import NotText, decode
from tests.tiny import reviews_frame

ACCENTED = ["café crème était très bon", "naïve façade, déçu", "Öl und Bär: schön", "señor, ¡qué malo!"]


def _accented_frame(n=80) -> pd.DataFrame:
    frame = reviews_frame(n)
    frame["text"] = [f"{t} {ACCENTED[i % len(ACCENTED)]} {i}" for i, t in enumerate(frame["text"])]
    return frame


@pytest.mark.parametrize("encoding, shown", [("cp1252", "Windows-1252"), ("utf-16", "UTF-16"),
                                             ("utf-8-sig", None), ("utf-8", None)])
def test_csv_in_other_encodings_is_read_and_named(tmp_path, encoding, shown):
    frame = _accented_frame()
    path = tmp_path / "reviews.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    data = prepare(TrainConfig(dataset=str(path), max_samples=0))
    texts = set(pd.concat(data.splits.values())["text"])
    assert texts == set(frame["text"])  # every accent decoded as written
    notes = [n for n in data.notes if "read as" in n]
    assert (notes and shown in notes[0]) if shown else not notes


def test_jsonl_and_tsv_in_windows_1252(tmp_path):
    frame = _accented_frame()
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_bytes("\n".join(json.dumps(r, ensure_ascii=False) for r in frame.to_dict("records")).encode("cp1252"))
    tsv = tmp_path / "r.tsv"
    tsv.write_bytes(frame.to_csv(index=False, sep="\t").encode("cp1252"))
    for path in (jsonl, tsv):
        data = prepare(TrainConfig(dataset=str(path), max_samples=0))
        assert set(pd.concat(data.splits.values())["text"]) == set(frame["text"])
        assert any("Windows-1252" in n for n in data.notes)


def test_the_preview_command_names_the_encoding(tmp_path, tiny_model, capsys):
    path = tmp_path / "reviews.csv"
    path.write_bytes(_accented_frame().to_csv(index=False).encode("cp1252"))
    assert main(["data", "--dataset", str(path), "--model", str(tiny_model)]) == 0
    assert "read as Windows-1252" in capsys.readouterr().out


def test_binary_is_refused_and_a_stray_nul_is_removed(tmp_path):
    binary = tmp_path / "data.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DatasetError, match="is not text"):
        prepare(TrainConfig(dataset=str(binary)))
    nul = tmp_path / "nul.csv"
    text = reviews_frame(80).to_csv(index=False)
    nul.write_bytes(text.replace("great", "gr\x00eat", 1).encode())
    data = prepare(TrainConfig(dataset=str(nul), max_samples=0))
    assert any("1 NUL character removed" in n for n in data.notes)
    assert not any("\x00" in t for t in pd.concat(data.splits.values())["text"])


def test_decode_guesses():
    assert decode(b"plain ascii").encoding == "utf-8"
    assert decode("caf\xe9 cr\xe8me, tr\xe8s bon".encode("latin-1")).text == "caf\xe9 cr\xe8me, tr\xe8s bon"
    with pytest.raises(NotText):
        decode(b"\x00\x01\x02\x03" * 100)


def test_parquet_bytes_are_text_and_non_utf8_bytes_are_refused(tmp_path):
    frame = reviews_frame(80)
    good = frame.assign(text=[t.encode() for t in frame["text"]])
    good.to_parquet(tmp_path / "bytes.parquet")
    data = prepare(TrainConfig(dataset=str(tmp_path / "bytes.parquet"), max_samples=0))
    texts = pd.concat(data.splits.values())["text"]
    assert set(texts) == set(frame["text"]) and not any(t.startswith("b'") for t in texts)
    bad = frame.assign(text=[b"\xff\xfe" + t.encode() for t in frame["text"]])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match="column 'text' holds binary data that is not UTF-8 text"):
        prepare(TrainConfig(dataset=str(tmp_path / "bad.parquet")))


@pytest.mark.parametrize("column, value, flag", [("text", {"title": "x"}, "--text-columns"),
                                                 ("label", [1, 2], "--label-column")])
def test_nested_json_values_are_refused(tmp_path, column, value, flag):
    rows = reviews_frame(40).to_dict("records")
    rows[5][column] = value
    path = tmp_path / "nested.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DatasetError, match=f"column '{column}' holds nested values .* row 6.*{flag}"):
        prepare(TrainConfig(dataset=str(path)))


def test_review_files_in_other_encodings(tmp_path):
    txt = tmp_path / "reviews.txt"
    txt.write_bytes("très bon\nnul à chier\n".encode("cp1252"))
    assert read_reviews(txt)[0] == ["très bon", "nul à chier"]
    with pytest.raises(PredictError, match="is a folder"):
        read_reviews(tmp_path)


def test_predict_reads_non_utf8_standard_input(trained_run, monkeypatch, capsys):
    class Stdin(io.TextIOWrapper):
        def isatty(self):
            return False

    monkeypatch.setattr("sys.stdin", Stdin(io.BytesIO(b"great wonderful caf\xe9\nawful \xff\xfe dull\n")))
    assert main(["predict", str(trained_run[0].run_dir), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines][0] == "great wonderful café" and len(lines) == 2


def test_reviews_with_terminal_escapes_are_still_text():
    text = "text,label\n" + "".join(f'"great \x1b]0;pwned\x07 fun {i}",1\n"awful \x1b[2J {i}",0\n' for i in range(30))
    assert decode(text.encode()).text == text  # many escapes, but not binary


def test_a_one_line_review_file_of_terminal_escapes_is_text(tmp_path):
    """Short text dense with escape sequences (a coloured line copied from a terminal) is text, not binary."""
    from core.review_files import read_reviews

    path = tmp_path / "one.txt"
    path.write_bytes(b"\x1b[31mawful\x1b[0m \x1b[1mfilm\x1b[0m\x07\n")
    texts, _ = read_reviews(path)
    assert texts == ["\x1b[31mawful\x1b[0m \x1b[1mfilm\x1b[0m\x07"]
