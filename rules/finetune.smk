# fine-tuning: the teacher and every general student, on every task, once per seed


rule finetune:
    input:
        task="results/tasks/{task}",
        model=base_model,
    output:
        model=directory("results/finetune/{task}/{model}/seed{seed}"),
        predictions=directory("results/eval/{task}/{model}/seed{seed}"),
    params:
        finetune=model_finetune_block,
        checkpoint_dir=lambda wildcards: (
            f"results/checkpoints/finetune/{wildcards.task}/{wildcards.model}/seed{wildcards.seed}"
        ),
    log:
        "results/logs/finetune/{task}/{model}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{task}/{model}/seed{seed}.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(16000),
        runtime=1440,
        **training_resources(lambda wildcards: task_config(wildcards.task)["finetune"]),
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/finetune.py"
