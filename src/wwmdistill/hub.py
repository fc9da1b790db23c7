"""Downloads of model repositories from the Hugging Face hub."""

from __future__ import annotations

import shutil
from pathlib import Path


def hub_snapshot(
    repo_id: str, revision: str | None, into: Path, *, patterns: list[str] | None, key: str
) -> Path:
    """Download a hub repository (only `patterns`, when given) into `into`.

    A failure names the config `key` that asked for the download, since offline it is the
    usual cause.
    """
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(
            repo_id=repo_id, revision=revision, allow_patterns=patterns, local_dir=str(into)
        )
    except Exception as err:
        raise RuntimeError(
            f"{key}: could not download {repo_id!r} (revision {revision}) from the Hugging Face "
            f"hub: {err}"
        ) from err
    shutil.rmtree(Path(into) / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
    return Path(into)
