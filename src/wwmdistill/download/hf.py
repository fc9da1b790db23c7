"""A Hugging Face dataset split streamed into zstd JSON lines, the form a corpus reads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import zstandard

from wwmdistill.arrow_io import atomic_path
from wwmdistill.download import SourceSpecError
from wwmdistill.progress import tqdm


def download_hf(spec: dict[str, Any], dest: Path) -> Path:
    """Stream a Hugging Face dataset split into `dest` as zstd JSON lines `{text_field: text}`."""
    import datasets  # imported here: slow to import and only hf sources need it

    text_field = spec.get("text_field") or "text"
    max_docs = spec.get("max_docs")
    dataset_id = spec.get("dataset")
    if not dataset_id:
        raise SourceSpecError(f"hf source needs a 'dataset' key (got {sorted(spec)})")
    stream = datasets.load_dataset(
        dataset_id,
        spec.get("name"),
        data_files=spec.get("data_files"),
        split=spec.get("split") or "train",
        revision=spec.get("revision"),
        streaming=True,
    )
    rows = itertools.islice(stream, max_docs)
    with (
        atomic_path(dest) as tmp,
        zstandard.open(tmp, "wt", encoding="utf-8") as out,
    ):
        for index, row in enumerate(tqdm(rows, total=max_docs, desc=dataset_id, unit="doc")):
            text = row.get(text_field)
            if not isinstance(text, str):
                raise SourceSpecError(
                    f"{dataset_id}: row {index} has no string field {text_field!r} "
                    f"(fields: {sorted(row)})"
                )
            out.write(json.dumps({text_field: text}, ensure_ascii=False) + "\n")
    return Path(dest)
