"""Loading converted models from the Hugging Face Hub (``zoo.load("hf-hub:org/name[@revision]")``).

Only ``model.safetensors`` and ``config.json`` are fetched, through ``huggingface_hub`` and its cache, so
``HF_HUB_CACHE``/``HF_HOME``, ``HF_TOKEN``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as for any Hub
library. The environment is read on every call (huggingface_hub reads some of it once, at import).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .errors import ModelFormatError, OfflineError, ZooError
from .format import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_folder

HUB_FILES = (CONFIG_NAME, WEIGHTS_NAME)
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_TRUE = ("1", "true", "yes", "on")


class HubError(ZooError, OSError):
    """The Hub repository, revision or file could not be found or read."""


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; a bad id is a :class:`HubError`."""
    repo_id, _, revision = spec.strip().partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or (revision == "" and "@" in spec):
        raise HubError(f"bad Hub model id {spec!r}: expected org/name or org/name@revision (written "
                       "hf-hub:org/name where a model is loaded by name)")
    return repo_id, revision or None


def hub_endpoint() -> str:
    """The Hub endpoint: ``HF_ENDPOINT`` as set now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("GANZOO_OFFLINE", "").strip().lower() in _TRUE


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder, honouring ``HF_HUB_CACHE`` / ``HF_HOME`` as set now."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def download_from_hub(repo_id: str, revision: str | None = None, *, quiet: bool = False) -> Path:
    """Fetch (or find in the cache) the model files of ``repo_id`` and return the snapshot folder."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    offline = hub_offline()
    endpoint = hub_endpoint()
    # huggingface_hub retries an unreachable host for tens of seconds; check the socket once, quickly, and
    # then use the cache only (a cached copy still loads; otherwise the error below says so at once).
    unreachable = not offline and not endpoint_reachable(endpoint)
    rev = revision or "main"
    where = f"hf-hub:{repo_id}@{rev}"
    paths: list[Path] = []
    for filename in HUB_FILES:
        try:
            p = hf_hub_download(repo_id, filename, revision=revision, cache_dir=hub_cache_dir(),
                                local_files_only=offline or unreachable, endpoint=endpoint, library_name="ganzoo",
                                tqdm_class=_QuietTqdm if quiet else None)
        except hf_errors.GatedRepoError:
            raise HubError(f"{where} is gated: accept its terms on the Hub and log in (`hf auth login` or HF_TOKEN)") \
                from None
        except hf_errors.RepositoryNotFoundError:
            raise HubError(f"Hub repository {repo_id} not found at {endpoint} (private? set HF_TOKEN or run "
                           "`hf auth login`; otherwise check the spelling)") from None
        except hf_errors.RevisionNotFoundError:
            raise HubError(f"revision {rev!r} not found in Hub repository {repo_id} at {endpoint}") from None
        except hf_errors.LocalEntryNotFoundError:
            why = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else f"{endpoint} cannot be reached"
            raise OfflineError(f"{where} is not in the Hub cache ({hub_cache_dir()}) and {why}: tried {filename}; "
                               "connect and retry, or " + _provide_hint(repo_id, rev)) from None
        except hf_errors.EntryNotFoundError:
            raise ModelFormatError(f"{where} has no {filename}, so it is not a ganzoo model repository (expected "
                                   f"{' + '.join(HUB_FILES)}; publish one with `ganzoo push FOLDER --repo-id "
                                   f"{repo_id}`)") from None
        except (hf_errors.HfHubHTTPError, OSError, ValueError) as e:
            text = str(e).strip()
            first = text.splitlines()[0] if text else type(e).__name__
            raise OfflineError(f"cannot fetch {filename} of {where} from {endpoint} ({first}); "
                               + _provide_hint(repo_id, rev)) from None
        paths.append(Path(p))
        revision = Path(p).parent.name  # pin the commit the first file came from, for the next file
    folder = paths[0].parent
    if paths[1].parent != folder:  # both files must come from the same commit
        raise HubError(f"{where}: {HUB_FILES[0]} and {HUB_FILES[1]} resolved to different commits; retry")
    return folder


def endpoint_reachable(endpoint: str, timeout: float | None = None) -> bool:
    """Whether a TCP connection to ``endpoint``'s host opens within ``timeout`` (true behind a proxy)."""
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                       "all_proxy")):
        return True  # the proxy decides; let huggingface_hub go through it
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if timeout is None:
        timeout = float(os.environ.get("GANZOO_CONNECT_TIMEOUT", "1.5"))
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class _QuietTqdm(tqdm):
    """A progress bar that never shows (``quiet=True``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _provide_hint(repo_id: str, rev: str) -> str:
    return (f"to provide the files yourself, put {CONFIG_NAME} and {WEIGHTS_NAME} from "
            f"{hub_endpoint()}/{repo_id}/tree/{rev} into a folder and call zoo.load('path/to/folder')")


def load_from_hub(repo_spec: str, device: str | torch.device = "cpu", quiet: bool = False,
                  revision: str | None = None) -> torch.nn.Module:
    """Load ``org/name[@revision]`` from the Hub through huggingface_hub's cache, strictly."""
    repo_id, rev = parse_repo_spec(repo_spec)
    if revision is not None and rev is not None and revision != rev:
        raise HubError(f"two revisions given for {repo_id}: {rev!r} in the id and revision={revision!r}")
    folder = download_from_hub(repo_id, revision or rev, quiet=quiet)
    model = load_folder(folder, device)
    model.model_info.setdefault("model_name", f"hf-hub:{repo_id}")
    model.model_info["hub_repo"] = repo_id
    model.model_info["hub_commit"] = folder.name
    return model


# --- publishing -------------------------------------------------------------------------------------------

PUSH_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)


def validate_folder(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Check that ``folder`` is a complete ganzoo model folder; return the files to publish with sizes.

    The config must read, the weights must load strictly into the architecture and ``README.md`` must be a
    model card whose YAML header parses. Raises :class:`ModelFormatError` naming the problem.
    """
    from huggingface_hub import ModelCard

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder} is not a folder; push a converted model folder (`ganzoo convert SRC OUT`)")
    load_folder(folder, "cpu")
    card_path = folder / CARD_NAME
    if not card_path.is_file():
        raise ModelFormatError(f"{folder} has no {CARD_NAME} model card; re-convert the model to write one")
    text = card_path.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("---"):
        raise ModelFormatError(f"{card_path} has no YAML metadata header; re-convert the model to write one")
    try:
        data = ModelCard(text).data.to_dict()
    except Exception as e:  # noqa: BLE001 - any parse failure of user text is a format problem
        raise ModelFormatError(f"{card_path}: the card's YAML header does not parse ({e})") from None
    if data.get("library_name") != "ganzoo":
        raise ModelFormatError(f"{card_path}: card metadata must say library_name: ganzoo (found "
                               f"{data.get('library_name')!r}); re-render it with zoo.cards.render_card")
    return [{"path": name, "size_bytes": (folder / name).stat().st_size} for name in PUSH_FILES]


def push_folder(folder: str | os.PathLike[str], repo_id: str, *, private: bool = False, dry_run: bool = False,
                commit_message: str | None = None, revision: str | None = None) -> dict[str, Any]:
    """Validate ``folder`` and upload its model files to Hub repo ``repo_id`` (created if needed)."""
    repo, rev = parse_repo_spec(repo_id)
    if rev is not None:
        raise HubError(f"give the branch with --revision, not in the repo id ({repo_id!r})")
    files = validate_folder(folder)
    report: dict[str, Any] = {"repo_id": repo, "private": private, "revision": revision or "main",
                              "endpoint": hub_endpoint(), "files": files,
                              "total_bytes": sum(f["size_bytes"] for f in files), "dry_run": dry_run}
    if dry_run:
        return report
    if hub_offline():
        raise OfflineError("cannot push while offline mode is on (HF_HUB_OFFLINE); unset it or use --dry-run")
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf_errors

    api = HfApi(endpoint=hub_endpoint(), library_name="ganzoo")
    try:
        url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(repo_id=repo, folder_path=str(folder), allow_patterns=list(PUSH_FILES),
                                 commit_message=commit_message or f"Upload ganzoo model {Path(folder).name}",
                                 revision=revision, repo_type="model")
    except hf_errors.HfHubHTTPError as e:
        text = str(e).strip()
        raise HubError(f"push to {repo} at {hub_endpoint()} failed: {text.splitlines()[0] if text else e!r} "
                       "(logged in with write access? `hf auth login` or HF_TOKEN)") from None
    except OSError as e:
        raise OfflineError(f"push to {repo} failed: cannot reach {hub_endpoint()} ({e})") from None
    report["repo_url"] = str(url)
    report["commit_url"] = str(getattr(info, "commit_url", info))
    report["commit"] = getattr(info, "oid", None)
    return report
