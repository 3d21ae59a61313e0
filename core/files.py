"""Files written so readers never see half of them, and JSON read with one-line errors."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from core.errors import RunError


class NotAFile(OSError):
    """A path that a file write must not replace: a device, FIFO, socket or folder, or a link into /proc or /dev/fd
    (where /dev/stdout leads: a stream of a running process, not a file)."""


_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO, a named pipe",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def write_target(path: str | Path) -> Path:
    """The file a write to `path` replaces: `path` itself, or the end of its chain of symbolic links (a link stays
    a link and its target gets the new content), which may not exist yet. NotAFile when that is no regular file.

    Renaming a new file over a device or a FIFO replaces it (as root, /dev/full or /dev/stdout become plain
    files); over a link, replaces the link. Nothing is opened here: a FIFO would block.
    """
    given = Path(path).expanduser()
    current = Path(os.path.abspath(given))
    for _ in range(40):  # the kernel's own limit on links followed
        current = Path(os.path.realpath(current.parent)) / current.name  # the links of its folders, followed
        if _process_stream(str(current)):
            raise NotAFile(f"{given} is not a regular file (it leads to {current}, a stream of a running process)")
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current  # a new file, or the missing target of a link: made there
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(current)
            if _process_stream(link):  # /dev/stdout -> /proc/self/fd/1 (macOS: fd/1, caught above next round)
                raise NotAFile(f"{given} is not a regular file (it leads to {link}, a stream of a running process)")
            current = current.parent / link
            continue
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "a special file")
            raise NotAFile(f"{given} is not a regular file ({kind})")
        return current
    raise NotAFile(f"{given} is a chain of symbolic links that does not end (a loop)")


def _process_stream(path: str) -> bool:
    """A path into /proc or /dev/fd: a running process's open files (its standard output, a pipe), not files."""
    return path.startswith(("/proc/", "/dev/fd/"))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file so readers see the old or the new content, never half of it.

    A symbolic link is written through (write_target): it stays a link to its target, which gets the new content
    and keeps its permissions. A device, FIFO or socket is refused (NotAFile), never replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = write_target(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()  # as open() makes a new file: mkstemp's 0600 hid files on a shared box
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask: from /proc (Linux), else read by setting it and putting it back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
