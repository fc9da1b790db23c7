"""Config blocks into settings dataclasses."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def known_keys(cls: type, block: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """`block` as keyword arguments for `cls`; a key `cls` does not have is an error naming it.

    The schema rejects unknown keys before a job starts; this keeps the library as strict when
    it is called directly.
    """
    block = dict(block or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(block) - names)
    if unknown:
        raise ValueError(
            f"config {where}: unknown key(s) {unknown}; expected some of {sorted(names)}"
        )
    return block
