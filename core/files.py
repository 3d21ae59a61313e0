"""Files written so readers never see half of them, and JSON read with one-line errors."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.errors import RunError


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Atomically write `data` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: str | Path, damaged: str = "the run folder is damaged") -> Any:
    """Read a JSON file, raising RunError with the file named when it is missing or corrupt (then saying
    `damaged`)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path.name} is missing from {path.parent}") from None
    except (ValueError, UnicodeDecodeError):
        raise RunError(f"{path} is not valid JSON; {damaged}") from None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_object(path: str | Path) -> dict[str, Any]:
    """Read a JSON file that must hold an object; RunError names the file when it does not."""
    data = read_json(path)
    if not isinstance(data, dict):
        path = Path(path)
        raise RunError(f"{path.name} in {path.parent.name} holds a JSON {json_kind(data)}, not an object; "
                       "the run folder is damaged")
    return data


def json_kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
