"""A hub dataset is streamed: a 5,000-review job reads a sliver of a large split, the same rows for the same seed."""

import pandas as pd
import pytest

from core.config import TrainConfig
from core.data.clean import prepare
from tests.tiny import reviews_frame

SHARD_ROWS = 5_000
BUFFER = 1_000  # the real buffer is 10,000 rows; scaled down with the shards to keep this test quick


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 parquet shards of 20,000 reviews each."""
    folder = tmp_path_factory.mktemp("hub")
    base = reviews_frame(SHARD_ROWS)
    files = []
    for shard in range(4):
        frame = base.assign(text=[f"{t} {shard}-{i}" for i, t in enumerate(base["text"])])
        path = folder / f"train-{shard}.parquet"
        frame.to_parquet(path, row_group_size=250)
        files.append(str(path))
    return files


@pytest.fixture()
def hub_stand_in(shards, monkeypatch, tmp_path):
    """`stand-in/reviews` on a fake hub made of `shards`; counts the rows the stream pulls."""
    import datasets

    files = shards
    real = datasets.load_dataset
    pulled = {"rows": 0, "calls": []}

    def count(row):
        pulled["rows"] += 1
        return row

    def load(name, *args, streaming=False, **kwargs):
        pulled["calls"].append(streaming)
        if name != "stand-in/reviews":
            return real(name, *args, streaming=streaming, **kwargs)
        loaded = real("parquet", data_files={"train": files}, streaming=streaming)
        if streaming:
            loaded["train"] = loaded["train"].map(count)
        return loaded

    monkeypatch.setattr(datasets, "load_dataset", load)
    # Samples kept by one test (or an earlier run of the suite) must not answer another's.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setattr("core.data.sources.STREAM_BUFFER", BUFFER)
    # datasets waits 5 s after interleaving shards (an Arrow workaround): real runs pay it once, tests need not.
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    monkeypatch.setattr("core.data.sources.hub_reachable", lambda timeout=3.0: True)
    return pulled


def test_a_small_job_streams_a_sliver_of_the_split(hub_stand_in):
    config = TrainConfig(dataset="stand-in/reviews", max_samples=300)
    data = prepare(config)
    assert sum(len(s) for s in data.splits.values()) == 300
    assert hub_stand_in["calls"] == [True]  # streamed, never downloaded whole
    assert hub_stand_in["rows"] <= 2 * 300 + BUFFER + 250  # the pool, the buffer, a row group
    assert hub_stand_in["rows"] < 4 * SHARD_ROWS / 4
    again = prepare(config)
    assert again.fingerprint() == data.fingerprint()  # the same seed gives the same reviews


def test_the_stream_mixes_both_labels(hub_stand_in):
    data = prepare(TrainConfig(dataset="stand-in/reviews", max_samples=300))
    counts = pd.concat(data.splits.values())["label"].value_counts()
    assert set(counts.index) == {0, 1} and counts.min() > 120


def test_a_streamed_sample_is_kept_and_read_again_offline(hub_stand_in, tmp_path, monkeypatch):
    """The second run reads the sample the first streamed: no stream, and no Hub (a run resumed offline)."""
    config = TrainConfig(dataset="stand-in/reviews", max_samples=300)
    first = prepare(config)
    kept = tmp_path / "datasets-cache" / "sentitune-samples"
    assert hub_stand_in["calls"] == [True] and list(kept.glob("*.parquet"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("core.data.sources.hub_reachable", lambda timeout=3.0: False)
    again = prepare(config)
    assert hub_stand_in["calls"] == [True]  # read back, not streamed or downloaded
    assert again.fingerprint() == first.fingerprint()
