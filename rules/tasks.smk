# task data: official files under data_root (or downloaded), one Arrow file per split


rule task_data:
    input:
        files=announced_task_files,
        # Its vocabulary decides whether traditional text is converted; [UNK] rates in stats.
        tokenizer="results/tokenizer",
    output:
        task=directory("results/tasks/{task}"),
    params:
        content=task_content,
        task=task_block,
        data_root=config["data_root"],
        download_dir="results/download/tasks",
        seed=config["seed"],
    log:
        "results/logs/tasks/{task}.log",
    # Runs as soon as the tokenizer is there: missing data fails before any training starts.
    priority: 50
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/task_data.py"
