# wwmdistill: distil a Chinese whole-word-masking BERT teacher into small students.
# Thin on purpose: the stages live in rules/, the logic in src/wwmdistill/.
from pathlib import Path

from snakemake.utils import min_version, validate

from wwmdistill.config_check import check_top_k, normalise_paths, reject_float_integers

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")
reject_float_integers(config, Path(workflow.basedir) / "schemas/config.schema.yaml")
normalise_paths(config)
check_top_k(config, Path("results/tokenizer"))


include: "rules/common.smk"


wildcard_constraints:
    shard=r"\d{5}",
    seed=r"\d+",
    task=alternatives(TASKS),
    model=alternatives(MODELS),
    student=alternatives(MODELS[1:]),
    variant="td|td_noaug",
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
include: "rules/evaluate.smk"


rule all:
    default_target: True
    input:
        stats="results/corpus/stats.json",
        masked=shard_paths("masked"),
        segmenter_eval=segmenter_eval_targets(),
        teacher="results/teacher/model",
        students=expand("results/general/{student}", student=sorted(config["students"])),
        report="results/report.md",
        model_cards=expand("results/models/{student}", student=sorted(config["students"])),
