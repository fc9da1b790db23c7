# wwmdistill: distil a Chinese whole-word-masking BERT teacher into small students.
# Thin on purpose: the stages live in rules/, the logic in src/wwmdistill/.
import copy
from pathlib import Path

from snakemake.utils import min_version, validate

from wwmdistill.config_check import check_top_k, normalise_paths
from wwmdistill.settings import check_config

min_version("9.0")


configfile: "config.yaml"


# The config as written: a finetune key ranks above a task's CLUE recipe only where it is written
# (rules/common.smk registry_task_blocks), which the schema's filled-in defaults would hide.
USER_CONFIG = copy.deepcopy(config)
# The settings models validate (one error format, naming each key); the schema generated from
# them fills the defaults, which the rules pass on as params.
check_config(config)
validate(config, "schemas/config.schema.yaml")
normalise_paths(config)
check_top_k(config, Path("results/tokenizer"))


include: "rules/common.smk"


wildcard_constraints:
    shard=r"\d{5}",
    seed=r"\d+",
    task=alternatives(REGISTRY),
    model=alternatives(MODELS),
    student=alternatives(STUDENTS),
    variant="td|td_noaug",
    row=rf"(?:{alternatives(MODELS)})(?:\.(?:td|td_noaug))?",
    slice=r"\d{3}",


include: "rules/corpus.smk"
include: "rules/segment.smk"
include: "rules/teacher.smk"
include: "rules/mask.smk"
include: "rules/general.smk"
include: "rules/tasks.smk"
include: "rules/finetune.smk"
include: "rules/augment.smk"
include: "rules/task_distill.smk"
include: "rules/deploy.smk"
include: "rules/evaluate.smk"
include: "rules/claims.smk"


# A per-task target outside the registry (results/eval/afqmcx.json) stops the DAG naming the task
# and the known ones, instead of Snakemake's bare "no rule to produce".
rule unknown_task:
    input:
        unknown_task,
    output:
        "results/{stage}/{name}{rest}",
    wildcard_constraints:
        stage="|".join(TASK_STAGES),
        name=rf"(?!(?:{alternatives(REGISTRY)})(?:\.json$|/|$))[^/]+?",
        rest=r"(?:\.json|/.+)?",
    log:
        "results/logs/unknown_task/{stage}/{name}{rest}.log",


rule all:
    default_target: True
    input:
        stats="results/corpus/stats.json",
        masked=shard_paths("masked"),
        segmenter_eval=segmenter_eval_targets(),
        teacher="results/teacher/model",
        students=expand("results/general/{student}", student=STUDENTS),
        report="results/report.md",
        model_cards=expand("results/models/{student}", student=STUDENTS),
