# deploy: every row of a task's table exported to ONNX fp32 and int8, checked against PyTorch on
# dev, and all of them timed together as a user would see them


rule deploy:
    input:
        task="results/tasks/{task}",
        model=deploy_source,
    output:
        deployed=directory("results/deploy/{task}/{row}"),
    params:
        finetune=deploy_settings,
    log:
        "results/logs/deploy/{task}/{row}.log",
    benchmark:
        "results/benchmarks/deploy/{task}/{row}.tsv"
    threads: 1
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=120,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/deploy.py"


rule deploy_speed:
    input:
        task="results/tasks/{task}",
        deployed=lambda wildcards: deployed_rows(wildcards.task),
        models=lambda wildcards: deployed_models(wildcards.task),
    output:
        speed="results/deploy/{task}/speed.json",
    params:
        rows=lambda wildcards: [row for row, _, _ in eval_rows(wildcards.task)],
        seq_len=lambda wildcards: task_config(wildcards.task)["finetune"]["max_seq_len"],
        speed=block("evaluation")["speed"],
    log:
        "results/logs/deploy/{task}/speed.log",
    benchmark:
        "results/benchmarks/deploy/{task}/speed.tsv"
    threads: config["evaluation"]["speed"]["threads"]
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=120,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/deploy_speed.py"
