"""Serve a deployed model (`results/deploy/{task}/{model}/`) from the command line.

    python -m wwmdistill.predict DIR TEXT [TEXT ...]     one example from the arguments
    python -m wwmdistill.predict DIR < inputs.jsonl      one JSON object per line

Arguments fill the kind's input fields in order (classification: text_a [text_b]; span QA:
question context; multiple choice: context question option option ...); a JSON line names
them (`{"text_a": ..., "text_b": ...}`, `{"question": ..., "context": ...}`,
`{"context": ..., "question": ..., "choices": [...]}`) and may carry an `id`. Prints one JSON
line per example: classification its label and every label's probability, span QA the answer
text, multiple choice the chosen option's index and text. Tokenises with the model's own
tokenizer and runs onnxruntime: torch is never imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.deploy.runtime import Deployed, open_deployed


def _from_arguments(deployed: Deployed, texts: Sequence[str]) -> dict[str, Any]:
    """The kind's input fields from positional texts; a list field (options) takes the rest."""
    fields = deployed.kind.input_fields
    schema = deployed.kind.row_schema
    given: dict[str, Any] = {}
    rest = list(texts)
    for name in fields:
        if pa.types.is_list(schema.field(name).type):
            given[name], rest = rest, []
        elif rest:
            given[name] = rest.pop(0)
    if rest:
        raise ValueError(
            f"{len(texts)} texts for a {deployed.kind.name} model, which takes {list(fields)}"
        )
    return given


def _from_lines(lines: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"stdin line {n}: not JSON ({err})") from None
        if not isinstance(record, dict):
            raise ValueError(f"stdin line {n}: a JSON object is expected")
        out.append(record)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wwmdistill.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("deploy_dir", type=Path, help="a results/deploy/{task}/{model} directory")
    parser.add_argument("texts", nargs="*", help="one example; none: JSON lines on stdin")
    parser.add_argument("--int8", action="store_true", help="serve model.int8.onnx")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    try:
        deployed = open_deployed(args.deploy_dir, int8=args.int8, threads=args.threads)
        if args.texts:
            inputs = [_from_arguments(deployed, args.texts)]
        else:
            inputs = _from_lines(sys.stdin.read().splitlines())
        answers = deployed.predict(inputs) if inputs else []
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for answer in answers:
        print(json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
