"""Read text whatever its encoding: UTF-8 first, then a BOM, then charset-normalizer's best guess."""

from __future__ import annotations

import codecs
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


class NotText(ValueError):
    """The bytes are not text in any encoding we can tell."""


@dataclass(frozen=True)
class DecodedText:
    """Text read from bytes, the encoding used, and how many NUL characters were dropped."""

    text: str
    encoding: str
    nuls_removed: int = 0

    @property
    def note(self) -> str | None:
        """A line for the cleaning notes when the file was not plain UTF-8, else None."""
        parts = []
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
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\x00")
    if nuls > NUL_SHARE * len(text) or controls > CONTROL_SHARE * len(text):
        raise NotText(f"{what} is not text (it holds binary data)")
    return DecodedText(text.replace("\x00", "") if nuls else text, encoding, nuls)


def read_text(path: str | Path) -> DecodedText:
    """The whole text of a file, decoded as `decode` does."""
    path = Path(path)
    return decode(path.read_bytes(), str(path))


def decode_lenient(data: bytes) -> str:
    """Text from bytes that may mix encodings (standard input): detected, else UTF-8 with replacements."""
    try:
        return decode(data).text
    except NotText:
        return data.decode("utf-8", errors="replace").replace("\x00", "")
