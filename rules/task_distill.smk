# task distillation (TinyBERT): stage 1 intermediate layers, stage 2 prediction layer


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
        checkpoint_dir=lambda wildcards: task_distill_checkpoints(wildcards, "stage1"),
    log:
        "results/logs/task_distill/{task}/{student}/{variant}/seed{seed}/stage1.log",
    benchmark:
        "results/benchmarks/task_distill/{task}/{student}/{variant}/seed{seed}/stage1.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(16000),
        runtime=1440,
        # The GPUs, CPU processes and nodes of the task's fine-tuning.
        **training_resources(lambda wildcards: task_config(wildcards.task)["finetune"]),
    conda:
        "../envs/gpu.yaml"
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
        checkpoint_dir=lambda wildcards: task_distill_checkpoints(wildcards, "stage2"),
    log:
        "results/logs/task_distill/{task}/{student}/{variant}/seed{seed}/stage2.log",
    benchmark:
        "results/benchmarks/task_distill/{task}/{student}/{variant}/seed{seed}/stage2.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(16000),
        runtime=1440,
        # The GPUs, CPU processes and nodes of the task's fine-tuning.
        **training_resources(lambda wildcards: task_config(wildcards.task)["finetune"]),
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/task_distill_stage2.py"
