"""Push to the Hub: through huggingface_hub's HfApi, with its two network calls replaced; every refusal that
needs no network is one line and exit code 2, with nothing sent."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from core.cli import main


class FakeHub:
    """Stands in for HfApi's network calls; keeps what they were given and what the staged folder held."""

    def __init__(self, monkeypatch, refuse: int | None = None):
        from huggingface_hub import HfApi

        self.created, self.uploads, self.refuse = [], [], refuse
        monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **kw: self.create_repo(api, *a, **kw))
        monkeypatch.setattr(HfApi, "upload_folder", lambda api, *a, **kw: self.upload_folder(api, *a, **kw))

    def create_repo(self, api, repo_id, **kwargs):
        from huggingface_hub.errors import HfHubHTTPError

        if self.refuse:
            # The HTTP client huggingface_hub itself uses, whatever it is called in the installed version.
            http = importlib.import_module(HfHubHTTPError.__mro__[1].__module__.split(".")[0])
            request = http.Request("POST", "https://huggingface.co/api/repos/create")
            raise HfHubHTTPError("refused", response=http.Response(self.refuse, request=request))
        self.created.append((repo_id, kwargs, api.token))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, api, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        self.uploads.append({"repo": repo_id, "files": {p.name: p.read_bytes() for p in folder.iterdir()}, **kwargs})


@pytest.fixture()
def online(monkeypatch):
    import core.push

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(core.push, "hub_reachable", lambda: True)


def test_push_uploads_the_model_folder_with_a_card_naming_the_repo(trained_run, online, monkeypatch, capsys):
    hub = FakeHub(monkeypatch)
    run = trained_run[0].run_dir
    card_before = (run / "model" / "README.md").read_text()
    assert main(["push", str(run), "--repo", "student/sentiment-demo", "--private", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["repo"] == "student/sentiment-demo" and out["private"] is True
    assert hub.created == [("student/sentiment-demo", {"private": True, "exist_ok": True, "repo_type": "model"},
                            "hf_test_token")]
    (upload,) = hub.uploads
    model_files = {p.name for p in (run / "model").iterdir() if p.is_file()}
    assert set(upload["files"]) == model_files and out["files"] == len(model_files)
    assert upload["files"]["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
    card = upload["files"]["README.md"].decode()
    assert card.startswith("---\n") and 'model="student/sentiment-demo"' in card
    assert (run / "model" / "README.md").read_text() == card_before  # the run's own card is left alone


@pytest.mark.parametrize("setup, says", [
    (lambda mp: mp.delenv("HF_TOKEN"), "no Hugging Face token found: run `hf auth login`"),
    (lambda mp: mp.setenv("HF_HUB_OFFLINE", "1"), "HF_HUB_OFFLINE is set"),
    (lambda mp: mp.setattr("core.push.hub_reachable", lambda: False), "cannot reach the Hugging Face Hub"),
])
def test_push_refusals_send_nothing(setup, says, trained_run, online, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no token saved by an earlier login either
    hub = FakeHub(monkeypatch)
    setup(monkeypatch)
    assert main(["push", str(trained_run[0].run_dir), "--repo", "student/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert hub.created == [] and hub.uploads == []


@pytest.mark.parametrize("status, says", [(401, "refused the token"), (403, "may not write to student/x")])
def test_a_refusal_from_the_hub_is_one_line(status, says, trained_run, online, monkeypatch, capsys):
    hub = FakeHub(monkeypatch, refuse=status)
    assert main(["push", str(trained_run[0].run_dir), "--repo", "student/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and hub.uploads == []
