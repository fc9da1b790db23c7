# augmentation: TinyBERT's, with the WWM teacher proposing whole-word replacements (one job per slice)


rule augment:
    input:
        task="results/tasks/{task}",
        teacher="results/teacher/model",
        segmenter=segmenter_model(),
    output:
        slice="results/augment/{task}/slices/{slice}.arrow",
    params:
        augment=lambda wildcards: canonical(task_config(wildcards.task)["augment"]),
        segmentation=block("segmentation"),
        content=augment_content,
        seed=config["seed"],
    log:
        "results/logs/augment/{task}/{slice}.log",
    benchmark:
        "results/benchmarks/augment/{task}/{slice}.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=720,
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/augment.py"


rule augment_merge:
    input:
        slices=augment_slices,
    output:
        train="results/augment/{task}/train.arrow",
    log:
        "results/logs/augment/{task}/merge.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=30,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/augment_merge.py"


rule task_logits:
    input:
        task="results/tasks/{task}",
        augmented="results/augment/{task}/train.arrow",
        teacher=finetuned_teacher,
    output:
        logits="results/augment/{task}/teacher_logits.arrow",
    params:
        finetune=finetune_block,
    log:
        "results/logs/augment/{task}/teacher_logits.log",
    benchmark:
        "results/benchmarks/augment/{task}/teacher_logits.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=720,
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/task_logits.py"
