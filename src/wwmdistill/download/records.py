"""The JSON records a download leaves on disk: a source's `manifest.json` (written last, so its
presence means the source is complete) and the check record beside each fetched file (how it
was shown whole, for reruns that reuse it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def check_record(dest: Path) -> Path:
    """Where `fetch_url` keeps how `dest` was checked, for reruns that reuse the file."""
    return dest.with_name(dest.name + ".check.json")


def read_record(path: Path) -> dict[str, Any] | None:
    """A manifest or check record as written, None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
