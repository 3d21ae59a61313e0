"""Upload a run's model folder and its model card to the Hugging Face Hub (huggingface_hub's upload_folder).

Everything that can be checked here is checked before anything is sent: the model, the repository name,
HF_HUB_OFFLINE, a token, and that the Hub answers. The card uploaded names the repository in its
`pipeline(...)` line; the run's own card is left as it is.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.data.sources import hub_offline, hub_reachable
from core.errors import HubError, ModelError
from core.network import check_hub_proxy
from core.predict import model_dir_of
from core.runs import layout
from core.runs.card import card_text

# The Hub's rule for a repository id, with the owner required: USER/NAME or ORG/NAME.
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
LOGIN_HINT = "run `hf auth login` (or set HF_TOKEN to a token with write access)"


@dataclass(frozen=True)
class PushResult:
    repo: str
    url: str
    files: int
    private: bool


def check_push(target: str | Path, repo: str) -> tuple[Path, str]:
    """The model folder to upload and the token to upload it with; HubError/ModelError say what is missing."""
    from huggingface_hub import get_token

    model_dir = model_dir_of(target)
    if (model_dir / layout.ONNX_MODEL).is_file():
        raise ModelError(f"{model_dir} is an ONNX export; push the run folder (its model and card go up)")
    if not REPO_ID.match(repo or "") or ".." in repo or repo.endswith((".git", ".")):
        raise HubError(f"'{repo}' is not a repository name: give USER/NAME (letters, digits, - _ .)")
    if hub_offline():
        raise HubError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it to push")
    token = get_token()
    if not token:
        raise HubError(f"no Hugging Face token found: {LOGIN_HINT}, then push again")
    check_hub_proxy()  # a dead proxy: said now, in one line, not after half a minute of retries
    if not hub_reachable():
        raise HubError("cannot reach the Hugging Face Hub; nothing was uploaded: push again when online")
    return model_dir, token


def push_run(target: str | Path, repo: str, private: bool = False) -> PushResult:
    """Create `repo` on the Hub if needed (private with `private`) and upload the model folder to it."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    model_dir, token = check_push(target, repo)
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="sentitune-push-") as staging:
        files = _stage(model_dir, Path(staging), repo)
        try:
            url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=repo, folder_path=staging, repo_type="model",
                              commit_message=f"Upload {_name(model_dir)} from sentitune")
        except HfHubHTTPError as exc:
            raise HubError(_refusal(exc, repo)) from None
        except OSError as exc:  # the connection dropped mid-upload
            raise HubError(f"the upload to {repo} failed: {exc.strerror or exc}; push again") from None
        except Exception as exc:
            if not _network_error(exc):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HubError(f"the upload to {repo} failed: the connection broke ({first[:200]}); push again") from None
    return PushResult(repo, str(url), files, private)


def _network_error(exc: BaseException) -> bool:
    """An HTTP client's connection error (httpx's, requests'...), which is no OSError."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _name(model_dir: Path) -> str:
    return model_dir.parent.name if model_dir.name == layout.MODEL else model_dir.name


def _stage(model_dir: Path, staging: Path, repo: str) -> int:
    """Link the model's files into `staging` (no copies of the weights), with a card that names `repo`."""
    count = 0
    for path in model_dir.iterdir():
        if path.is_file() and path.name != "README.md":
            (staging / path.name).symlink_to(path.resolve())
            count += 1
    run_dir = model_dir.parent
    if model_dir.name == layout.MODEL and (run_dir / layout.CONFIG).is_file():
        (staging / "README.md").write_text(card_text(run_dir, repo_id=repo), encoding="utf-8")
        count += 1
    elif (model_dir / "README.md").is_file():
        (staging / "README.md").symlink_to((model_dir / "README.md").resolve())
        count += 1
    return count


def _refusal(exc, repo: str) -> str:
    """One line for the Hub's refusal, by its HTTP status."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return f"the Hub refused the token: {LOGIN_HINT}"
    if status == 403:
        return f"the token may not write to {repo}: use a token with write access, or a repository you own"
    if status == 409:
        return f"{repo} exists and cannot be written to; pick another name"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"the Hub refused the upload to {repo} ({first[:200]}); nothing was changed on your side"
