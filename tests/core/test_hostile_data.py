"""Data paths that are not regular files: refused at once, never read or waited on (each in a process with a
time limit, so a regression fails instead of hanging the suite)."""

import os
import subprocess
import sys


def _data_command(path, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", "data", "--dataset", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=os.getcwd(), env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_a_fifo_with_no_writer_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "reviews.csv"
    os.mkfifo(fifo)
    done = _data_command(fifo, tmp_path)
    assert done.returncode == 2 and "is not a regular file but a FIFO" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_link_to_an_endless_device_is_refused_before_reading(tmp_path):
    link = tmp_path / "d.csv"
    link.symlink_to("/dev/zero")
    done = _data_command(link, tmp_path)
    assert done.returncode == 2 and "(it leads to /dev/zero)" in done.stderr, done.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/zero"


def test_a_large_binary_file_is_judged_by_its_first_bytes(tmp_path, monkeypatch):
    """Only the first 64 KB of a binary file named .csv are read before it is refused."""
    import io

    from core.textfile import SAMPLE_BYTES, NotText, read_text

    path = tmp_path / "big.csv"
    path.write_bytes(b"\x00\x01\x02" * 400_000)
    reads = []
    real_open = type(path).open

    def counting_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        data = handle.read()
        handle.close()

        class Counting(io.BytesIO):
            def read(self, size=-1):
                chunk = super().read(size)
                reads.append(len(chunk))
                return chunk
        return Counting(data)

    monkeypatch.setattr(type(path), "open", counting_open)
    try:
        read_text(path)
    except NotText as exc:
        assert "binary data" in str(exc)
    else:
        raise AssertionError("a binary file was read as text")
    assert sum(reads) == SAMPLE_BYTES
