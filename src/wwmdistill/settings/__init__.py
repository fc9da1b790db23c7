"""Every config option, defined once as a pydantic model.

The models validate the config at DAG build, generate schemas/config.schema.yaml (from which
Snakemake fills the defaults) and are the settings objects the library reads. Importing this
package is cheap (no torch), as the Snakefile does at every DAG build.
"""

from wwmdistill.settings.base import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_MEMBERS,
    PRECISIONS,
    Block,
    ConfigError,
    parse,
)
from wwmdistill.settings.claims import (
    AugmentationClaim,
    CacheClaim,
    ClaimsSettings,
    InitClaim,
    SmallFastClaim,
)
from wwmdistill.settings.config import Config, check_config, config_schema, schema_text
from wwmdistill.settings.pretraining import (
    CorpusSettings,
    EvalSettings,
    LogitsSettings,
    LossWeights,
    LtpSettings,
    MaskingSettings,
    ModelSize,
    SegmentationSettings,
    SourceSettings,
    StudentSettings,
    TeacherSettings,
    TokenizerSettings,
    TrainingSettings,
)
from wwmdistill.settings.tasks import (
    AugmentSettings,
    EvaluationSettings,
    FinetuneSettings,
    SpeedSettings,
    Stage1Settings,
    Stage2Settings,
    TaskBlock,
    TaskDistillSettings,
)

__all__ = [
    "DEFAULT_MAX_EXTRACT_BYTES",
    "DEFAULT_MAX_EXTRACT_MEMBERS",
    "PRECISIONS",
    "AugmentSettings",
    "AugmentationClaim",
    "Block",
    "CacheClaim",
    "ClaimsSettings",
    "Config",
    "ConfigError",
    "CorpusSettings",
    "EvalSettings",
    "EvaluationSettings",
    "FinetuneSettings",
    "InitClaim",
    "LogitsSettings",
    "LossWeights",
    "LtpSettings",
    "MaskingSettings",
    "ModelSize",
    "SegmentationSettings",
    "SmallFastClaim",
    "SourceSettings",
    "SpeedSettings",
    "Stage1Settings",
    "Stage2Settings",
    "StudentSettings",
    "TaskBlock",
    "TaskDistillSettings",
    "TeacherSettings",
    "TokenizerSettings",
    "TrainingSettings",
    "check_config",
    "config_schema",
    "parse",
    "schema_text",
]
