# tokenizer (the teacher's own, or WordPiece trained on the corpus for a scratch teacher)


rule tokenizer:
    input:
        shards=shard_paths("corpus") if config["tokenizer"]["source"] == "train" else [],
    output:
        dir=directory("results/tokenizer"),
    params:
        tokenizer=block("tokenizer"),
        content=content_of(local_paths(config["tokenizer"]["source"])),
    log:
        "results/logs/tokenizer.log",
    benchmark:
        "results/benchmarks/tokenizer.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=120,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/tokenizer.py"


rule teacher:
    input:
        masked=training_shards("masked") if teacher_trains() else [],
        heldout=heldout_shards("masked") if teacher_trains() else [],
        tokenizer="results/tokenizer",
    output:
        model=directory("results/teacher/model"),
    params:
        teacher=block("teacher"),
        content=content_of(local_paths(config["teacher"]["source"])),
        seed=config["seed"],
        checkpoint_dir="results/checkpoints/teacher",
    log:
        "results/logs/teacher.log",
    benchmark:
        "results/benchmarks/teacher.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(16000),
        runtime=2880,
        **training_resources(lambda wildcards: config["teacher"]["training"]),
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/teacher.py"


rule logits:
    input:
        masked="results/masked/{shard}.arrow",
        teacher="results/teacher/model",
    output:
        shard="results/teacher/logits/{shard}.arrow",
    params:
        logits=cache_block(),
    log:
        "results/logs/logits/{shard}.log",
    benchmark:
        "results/benchmarks/logits/{shard}.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=720,
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/logits.py"
