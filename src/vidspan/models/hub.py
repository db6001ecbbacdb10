"""Find a checkpoint on disk: a local directory as is, or a Hugging Face Hub id through the local cache.

Downloads are attempted only when the Hub is reachable; every failure is a :class:`ModelUnavailableError`
whose message says what to do instead, and it comes within seconds (no hanging on a dead network).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from vidspan.errors import MissingDependencyError, ModelUnavailableError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.0
ETAG_TIMEOUT_SECONDS = 10.0
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_TRUE = {"1", "ON", "YES", "TRUE"}


def resolve_checkpoint(checkpoint: str) -> Path:
    """The directory holding ``checkpoint``'s files.

    Args:
        checkpoint: A local directory, or a Hub id such as ``"NemoStation/Marlin-2B"``.

    Raises:
        ModelUnavailableError: The directory is missing or has no ``config.json``, or the Hub id is neither
            in the local Hugging Face cache nor downloadable.
    """
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"The checkpoint directory {path} has no config.json; pass a directory that holds a "
                "Hugging Face checkpoint (config.json, weights, tokenizer and processor files)."
            )
        return path.resolve()
    if path.exists():
        raise ModelUnavailableError(
            f"The checkpoint {path} is a file; pass a checkpoint directory or a Hub id."
        )
    if not _HUB_ID.fullmatch(checkpoint):
        raise ModelUnavailableError(f"The checkpoint directory {path} does not exist.")
    return _from_hub(checkpoint)


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) switches Hub access off."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").strip().upper() in _TRUE for name in names)


def hub_reachable(timeout_seconds: float = CONNECT_TIMEOUT_SECONDS) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout_seconds``.

    Behind an HTTPS proxy the check is skipped (True): the download's own timeouts apply.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise MissingDependencyError(
            "Loading models from the Hugging Face Hub needs huggingface_hub. "
            "Install with: pip install 'vidspan[qwen]'"
        ) from exc
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    try:
        cached = Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
        if (cached / "config.json").is_file():
            return cached
    except Exception:  # noqa: BLE001 - any miss in the cache means "not cached"
        pass
    if hub_offline():
        raise ModelUnavailableError(_unavailable(repo_id, "downloads are switched off (HF_HUB_OFFLINE=1)"))
    if not hub_reachable():
        raise ModelUnavailableError(_unavailable(repo_id, "the Hub cannot be reached"))
    logger.info("Downloading %s from the Hugging Face Hub into the local cache", repo_id)
    try:
        path = Path(snapshot_download(repo_id, cache_dir=cache_dir, etag_timeout=ETAG_TIMEOUT_SECONDS))
    except Exception as exc:  # noqa: BLE001 - classified below; the cause stays chained
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403) or type(exc).__name__ == "GatedRepoError":
            raise ModelUnavailableError(
                f"The Hugging Face Hub refused access to {repo_id} (HTTP {status or 'gated'}): accept the "
                "model's terms on its Hub page and run `huggingface-cli login` (or set HF_TOKEN), or pass a "
                f"local checkpoint directory (--model /path/to/{_name(repo_id)})."
            ) from exc
        if status == 404 or type(exc).__name__ == "RepositoryNotFoundError":
            raise ModelUnavailableError(
                f"The Hugging Face Hub has no model {repo_id} "
                "(or it is private: run `huggingface-cli login`)."
            ) from exc
        reason = f"the download failed ({type(exc).__name__})"
        raise ModelUnavailableError(_unavailable(repo_id, reason)) from exc
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(
            f"The Hub repository {repo_id} has no config.json, so it is not a model vidspan can load."
        )
    return path


def _name(repo_id: str) -> str:
    return repo_id.rsplit("/", 1)[-1]


def _unavailable(repo_id: str, reason: str) -> str:
    return (
        f"The weights of {repo_id} are not available here (no local copy in the Hugging Face cache and "
        f"{reason}), so pass a local checkpoint directory with --model /path/to/{_name(repo_id)} or an "
        "OpenAI-compatible server such as vLLM with --base-url http://HOST:8000/v1."
    )
