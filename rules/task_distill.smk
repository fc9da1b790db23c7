# task distillation (TinyBERT): stage 1 intermediate layers, stage 2 prediction layer


def stage1_data(wildcards):
    if wildcards.variant == "td":
        return [f"results/augment/{wildcards.task}/train.arrow"]
    return []


def task_distill_params(wildcards):
    return canonical(config["tasks"][wildcards.task]["task_distill"])


def task_distill_dir(wildcards):
    return (
        f"results/task_distill/{wildcards.task}/{wildcards.student}/{wildcards.variant}/"
        f"seed{wildcards.seed}"
    )


rule task_distill_stage1:
    input:
        task="results/tasks/{task}",
        augmented=stage1_data,
        student="results/general/{student}",
        teacher=finetuned_teacher,
    output:
        model=directory("results/task_distill/{task}/{student}/{variant}/seed{seed}/stage1"),
    params:
        task_distill=task_distill_params,
        finetune=finetune_block,
        checkpoint_dir=lambda wildcards: (
            "results/checkpoints/" + task_distill_dir(wildcards).removeprefix("results/") + "/stage1"
        ),
    log:
        "results/logs/task_distill/{task}/{student}/{variant}/seed{seed}/stage1.log",
    benchmark:
        "results/benchmarks/task_distill/{task}/{student}/{variant}/seed{seed}/stage1.tsv"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=1440,
    conda:
        "../envs/wwmdistill.yaml"
    script:
        "../workflow_scripts/task_distill_stage1.py"


rule task_distill_stage2:
    input:
        task="results/tasks/{task}",
        augmented="results/augment/{task}/train.arrow",
        logits="results/augment/{task}/teacher_logits.arrow",
        stage1="results/task_distill/{task}/{student}/{variant}/seed{seed}/stage1",
    output:
        model=directory("results/task_distill/{task}/{student}/{variant}/seed{seed}/model"),
        predictions=directory("results/eval/{task}/{student}.{variant}/seed{seed}"),
    params:
        task_distill=task_distill_params,
        finetune=finetune_block,
        checkpoint_dir=lambda wildcards: (
            "results/checkpoints/" + task_distill_dir(wildcards).removeprefix("results/") + "/stage2"
        ),
    log:
        "results/logs/task_distill/{task}/{student}/{variant}/seed{seed}/stage2.log",
    benchmark:
        "results/benchmarks/task_distill/{task}/{student}/{variant}/seed{seed}/stage2.tsv"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=1440,
    conda:
        "../envs/wwmdistill.yaml"
    script:
        "../workflow_scripts/task_distill_stage2.py"
