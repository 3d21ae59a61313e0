"""Bad-input cases for data files, round two: what real exports and hand-made files look like.

Some are refused with the line or class at fault; some are read the way the student meant, with a note saying how
(exit 0, and the note is in the preview's output).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.bad_input_support import Case, Env
from tests.tiny import reviews_frame


def _rows(n: int = 60) -> list[tuple[str, str]]:
    frame = reviews_frame(n)
    return list(zip(frame["text"], frame["label"]))


def _delimited(env: Env, name: str, sep: str, first_line: str = "") -> Path:
    lines = [first_line] if first_line else []
    lines += [sep.join(("text", "label"))] + [sep.join(row) for row in _rows()]
    return env.write(name, "\n".join(lines) + "\n")


def _labels(env: Env, spellings: list[str]) -> Path:
    rows = _rows()
    return env.write("labels.csv", "text,label\n" + "\n".join(
        f"{text},{spellings[i % len(spellings)]}" for i, (text, _) in enumerate(rows)) + "\n")


def _preview(env: Env, path: Path, *flags: str) -> list[str]:
    return ["data", "--dataset", str(path), "--model", str(env.model), *flags]


def _json_array(env: Env) -> Path:
    return env.write("array.jsonl", json.dumps([{"text": t, "label": label} for t, label in _rows()]))


def _cut_line(env: Env) -> Path:
    lines = [json.dumps({"text": t, "label": label}) for t, label in _rows()]
    lines[10] = lines[10][:15]  # the file was cut short mid-copy, then more appended
    return env.write("cut.jsonl", "\n".join(lines) + "\n")


def _scalar_lines(env: Env) -> Path:
    return env.write("numbers.jsonl", "\n".join(str(i) for i in range(60)) + "\n")


def _ragged_first_row(env: Env) -> Path:
    rows = [f"{t},{label}" for t, label in _rows()]
    return env.write("ragged.csv", "text,label\n" + "an extra, comma,positive\n" + "\n".join(rows) + "\n")


def _ragged_later_row(env: Env) -> Path:
    rows = [f"{t},{label}" for t, label in _rows()]
    rows[5] = "one, two, three,positive"
    return env.write("ragged.csv", "text,label\n" + "\n".join(rows) + "\n")


def _wrong_bom(env: Env) -> Path:
    text = "text,label\n" + "\n".join(f"{t},{label}" for t, label in _rows()) + "\n"
    return env.write("bom.csv", b"\xff\xfe" + text.encode("utf-8"))


def _mixed_encodings(env: Env) -> Path:
    rows = _rows()
    utf8 = [f"caf\u00e9 {t},{label}".encode() for t, label in rows[:30]]
    latin = [f"na\u00efve {t},{label}".encode("latin-1") for t, label in rows[30:]]
    return env.write("mixed.csv", b"text,label\n" + b"\n".join(utf8 + latin) + b"\n")


def _typo_label(env: Env) -> Path:
    rows = _rows(59) + [("good good", "postive")]
    return env.write("typo.csv", "text,label\n" + "\n".join(f"{t},{label}" for t, label in rows) + "\n")


def _link_to(env: Env, target: str) -> Path:
    link = env.tmp / "linked.csv"
    link.symlink_to(target)
    return link


DATA_CASES: dict[str, Case] = {
    "labels spelled several ways (0, 0.0, neg / 1, 1.0, pos)": Case(
        lambda e: _preview(e, _labels(e, ["0", "0.0", "neg", "1", "1.0", "pos"])), 0,
        "0, 0.0, neg -> negative, 1, 1.0, pos -> positive"),
    "labels spelled True, yes / False, no": Case(
        lambda e: _preview(e, _labels(e, ["True", "yes", "False", "no"])), 0,
        "False, no -> negative, True, yes -> positive"),
    "an inf label": Case(lambda e: e.train(dataset=_labels(e, ["0", "1", "inf"])), 2,
                         "holds inf as the label of 20 rows, which is no class; give those rows a label"),
    "a JSON array in a .jsonl file": Case(lambda e: _preview(e, _json_array(e)), 0,
                                          "one JSON array of rows, not one object per line"),
    "a .jsonl file with a cut line": Case(lambda e: e.train(dataset=_cut_line(e)), 2,
                                          "line 11 of cut.jsonl is not complete JSON (cut short?)"),
    "a .jsonl file of plain numbers": Case(lambda e: e.train(dataset=_scalar_lines(e)), 2,
                                           "line 1 of numbers.jsonl holds a JSON int, not an object"),
    "a semicolon-separated CSV (European Excel)": Case(lambda e: _preview(e, _delimited(e, "semi.csv", ";")), 0,
                                                       "delimiter ';' detected (not a comma)"),
    "Excel's sep= first line": Case(lambda e: _preview(e, _delimited(e, "sep.csv", "|", "sep=|")), 0,
                                    "delimiter '|' (from its sep= first line)"),
    "a ragged first row (an unquoted comma)": Case(
        lambda e: e.train(dataset=_ragged_first_row(e)), 2,
        "line 2 of ragged.csv has 3 fields but the header has 2 (an unquoted comma in a review?)"),
    "a ragged later row": Case(lambda e: e.train(dataset=_ragged_later_row(e)), 2,
                               "line 7 of ragged.csv has 4 fields but the header has 2"),
    "UTF-8 behind a UTF-16 byte-order mark": Case(lambda e: _preview(e, _wrong_bom(e)), 0,
                                                  "UTF-8 text behind a UTF-16 byte-order mark"),
    "rows in UTF-8 and rows in Latin-1": Case(lambda e: _preview(e, _mixed_encodings(e)), 0,
                                              "mixes encodings: 30 lines in UTF-8, 30 read as Windows-1252"),
    "one label with a typo": Case(lambda e: e.train(dataset=_typo_label(e)), 2,
                                  "class 'postive' (a typo of 'positive'?) has only 1 row"),
    "a text column listed twice": Case(lambda e: e.train("--text-columns", "text,text"), 2,
                                       "text column 'text' is listed twice"),
    "a dataset that links to /dev/zero": Case(lambda e: e.train(dataset=_link_to(e, "/dev/zero")), 2,
                                              "is not a regular file but a character device (it leads to /dev/zero)"),
    "a dataset that is a device": Case(lambda e: ["data", "--dataset", "/dev/null"], 2,
                                       "/dev/null is not a regular file but a character device"),
}
