"""Read text whatever its encoding: UTF-8 first, then a BOM, then charset-normalizer's best guess."""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 65536  # enough text to judge an encoding by
MESS_LIMIT = 0.1  # charset-normalizer's "chaos" below which a decoding reads as real text
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
NUL_SHARE = 0.01  # more NUL characters than this and the file is binary data (a stray one is a broken export)
CONTROL_SHARE = 0.10  # other control characters: a review may carry terminal escapes, binary data is full of them
TEXT_CONTROLS = "\t\n\r\x00\x1b\x07\x08\x0c"  # whitespace, NUL (counted apart), and what terminal escapes use


class NotText(ValueError):
    """The bytes are not text in any encoding we can tell."""


@dataclass(frozen=True)
class DecodedText:
    """Text read from bytes, the encoding used, and how many NUL characters were dropped."""

    text: str
    encoding: str
    nuls_removed: int = 0
    special: str | None = None  # how an unusual file was read (mixed encodings, a wrong byte-order mark)

    @property
    def note(self) -> str | None:
        """A line for the cleaning notes when the file was not plain UTF-8, else None."""
        parts = [self.special] if self.special else []
        if self.encoding not in ("utf-8", "utf-8-sig", "ascii"):
            parts.append(f"read as {display_name(self.encoding)} (detected; not UTF-8)")
        if self.nuls_removed:
            parts.append(f"{self.nuls_removed} NUL character{'s' if self.nuls_removed != 1 else ''} removed")
        return "; ".join(parts) or None


def display_name(encoding: str) -> str:
    """A codec name as people write it: cp1252 -> Windows-1252, utf_16 -> UTF-16."""
    name = codecs.lookup(encoding).name
    if name.startswith("cp") and name[2:].isdigit() and len(name) == 6:
        return f"Windows-{name[2:]}"
    return {"iso8859-1": "Latin-1 (ISO-8859-1)", "latin-1": "Latin-1 (ISO-8859-1)"}.get(name, name.upper())


def guess_encoding(data: bytes) -> str | None:
    """The encoding of `data`: a BOM's, UTF-8 when it decodes as such, else charset-normalizer's guess."""
    for bom, name in BOMS:
        if data.startswith(bom):
            return name
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    # Exported spreadsheets of (mostly English) reviews are Windows-1252 far more often than anything
    # else, and on accented Western text charset-normalizer often ranks a sibling code page first.
    try:
        sample = data[:SAMPLE_BYTES].decode("cp1252")
        if mess_ratio(sample, MESS_LIMIT) < MESS_LIMIT:
            return "cp1252"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    return best.encoding if best is not None else None


def decode(data: bytes, what: str = "the input") -> DecodedText:
    """Decode `data` as text; NotText when it is binary or in no encoding we can tell."""
    mixed = _mixed_lines(data)
    if mixed is not None:
        return mixed
    misplaced = _utf8_behind_a_utf16_bom(data)
    if misplaced is not None:
        return misplaced
    encoding = guess_encoding(data)
    if encoding is None:
        raise NotText(f"{what} is not text (binary data, or an encoding that cannot be told)")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise NotText(f"{what} is not valid {display_name(encoding)} text throughout; re-save it as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    nuls = text.count("\x00")
    controls = sum(1 for ch in text if ch < " " and ch not in TEXT_CONTROLS)
    if nuls > NUL_SHARE * len(text) or controls > CONTROL_SHARE * len(text):
        raise NotText(f"{what} is not text (it holds binary data)")
    return DecodedText(text.replace("\x00", "") if nuls else text, encoding, nuls)


def read_text(path: str | Path) -> DecodedText:
    """The whole text of a regular file, decoded as `decode` does.

    NotText for what is not a regular file (a device such as /dev/zero would be read forever, a FIFO with no
    writer blocks forever), and for a file whose first 64 KB are already binary (not read any further).
    """
    path = Path(path)
    check_regular(path)
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        if not head.startswith(tuple(bom for bom, _ in BOMS)) and _binary(head):
            raise NotText(f"{path} is not text (it holds binary data)")
        data = head + handle.read()
    return decode(data, str(path))


FILE_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
              (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def file_kind(path: str | Path) -> str | None:
    """What `path` is when it (or what its links lead to) is not a regular file: 'a character device', ...;
    None for a regular file or a path that does not exist."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in FILE_KINDS if test(mode)), "not a regular file")


def check_regular(path: str | Path) -> None:
    """NotText when `path` exists and is not a regular file (links are followed and named)."""
    kind = file_kind(path)
    if kind is None:
        return
    target = os.path.realpath(path)
    where = f" (it leads to {target})" if target != os.path.abspath(path) else ""
    raise NotText(f"{path} is not a regular file but {kind}{where}")


def _binary(sample: bytes) -> bool:
    """Whether a sample of bytes is binary data: NULs or other control bytes past what text holds."""
    if not sample:
        return False
    nuls = sample.count(0)
    controls = sum(1 for b in sample if b < 32 and chr(b) not in TEXT_CONTROLS)
    return nuls > NUL_SHARE * len(sample) or controls > CONTROL_SHARE * len(sample)


def _utf8_behind_a_utf16_bom(data: bytes) -> DecodedText | None:
    """Text saved as UTF-8 behind a UTF-16 byte-order mark (a tool that wrote the wrong BOM): read as UTF-8.

    Real UTF-16 of mostly Latin text is full of NUL bytes; UTF-8 never holds them.
    """
    for bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if data.startswith(bom) and not data.startswith(codecs.BOM_UTF32_LE):
            rest = data[len(bom):]
            if rest and 0 not in rest[:SAMPLE_BYTES]:
                try:
                    return DecodedText(rest.decode("utf-8"), "utf-8", special="UTF-8 text behind a UTF-16 byte-order "
                                                                          "mark (the mark was ignored)")
                except UnicodeDecodeError:
                    return None
    return None


def _mixed_lines(data: bytes) -> DecodedText | None:
    """A file whose lines mix UTF-8 with a legacy encoding (rows appended from two exports): each line decoded in
    its own encoding. None when the file is not of that kind (all UTF-8, or no UTF-8 line beyond ASCII)."""
    if data.startswith(tuple(bom for bom, _ in BOMS if bom != codecs.BOM_UTF8)) or 0 in data[:SAMPLE_BYTES]:
        return None
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    utf8, legacy = [], []
    for number, line in enumerate(lines, 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8.append(number)
        except UnicodeDecodeError:
            legacy.append(number)
    if not utf8 or not legacy:
        return None
    other = guess_encoding(b"\n".join(lines[n - 1] for n in legacy))
    if other is None or codecs.lookup(other).name in ("utf-8", "utf-16", "utf-32"):
        return None
    odd = set(legacy)
    try:
        text = "\n".join(line.decode(other) if n in odd else line.decode("utf-8") for n, line in enumerate(lines, 1))
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    shown = ", ".join(map(str, legacy[:5])) + (f" and {len(legacy) - 5} more" if len(legacy) > 5 else "")
    return DecodedText(text, "utf-8", special=f"mixes encodings: {len(utf8)} lines in UTF-8, {len(legacy)} read as "
                                           f"{display_name(other)} (lines {shown})")


def decode_lenient(data: bytes) -> str:
    """Text from bytes that may mix encodings (standard input): detected, else UTF-8 with replacements."""
    try:
        return decode(data).text
    except NotText:
        return data.decode("utf-8", errors="replace").replace("\x00", "")
