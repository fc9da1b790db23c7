# general distillation: one job per student, all from the same teacher and logit cache


rule general:
    input:
        teacher="results/teacher/model",
        tokenizer="results/tokenizer",
        masked=distill_shards("masked"),
        logits=student_logits,
        heldout=heldout_shards("masked"),
    output:
        model=directory("results/general/{student}"),
    params:
        student=student_block,
        content=lambda wildcards: content_of(
            local_paths(config["students"][wildcards.student]["path"])
        ),
        seed=config["seed"],
        checkpoint_dir=lambda wildcards: f"results/checkpoints/general/{wildcards.student}",
    log:
        "results/logs/general/{student}.log",
    benchmark:
        "results/benchmarks/general/{student}.tsv"
    threads: 2
    resources:
        mem_mb=memory_per_attempt(16000),
        runtime=2880,
        **training_resources(
            lambda wildcards: config["students"][wildcards.student]["training"]
        ),
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/general.py"
