# evaluation: the speed table per model, the comparison per task, the report and model cards


rule bench:
    input:
        models=[model_dir(model) for model in MODELS],
    output:
        bench=expand("results/bench/{model}.json", model=MODELS),
    params:
        speed=block("evaluation")["speed"],
    log:
        "results/logs/bench.log",
    threads: config["evaluation"]["speed"]["threads"]
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=60,
    conda:
        "../envs/gpu.yaml"
    script:
        "../workflow_scripts/bench.py"


rule evaluate:
    input:
        task="results/tasks/{task}",
        predictions=lambda wildcards: eval_predictions(wildcards.task),
        deployed=lambda wildcards: deployed_rows(wildcards.task),
        speed="results/deploy/{task}/speed.json",
        bench=expand("results/bench/{model}.json", model=MODELS),
    output:
        eval=report(
            "results/eval/{task}.json",
            caption="../report/eval_table.rst",
            category="Evaluation",
            labels={"task": "{task}"},
        ),
    params:
        task=lambda wildcards: canonical(task_config(wildcards.task)),
        evaluation=block("evaluation"),
        rows=lambda wildcards: eval_rows(wildcards.task),
    log:
        "results/logs/evaluate/{task}.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(8000),
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/evaluate.py"


rule report:
    input:
        evals=evaluation_targets(),
        bench=expand("results/bench/{model}.json", model=MODELS),
        teacher="results/teacher/model",
        students=expand("results/general/{student}", student=STUDENTS),
    output:
        markdown="results/report.md",
        tables=report(
            "results/report/tables.html",
            caption="../report/report.rst",
            category="Report",
        ),
        losses=report(
            "results/report/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Report",
        ),
        score_speed=report(
            "results/report/score_vs_speed.png",
            caption="../report/score_vs_speed.rst",
            category="Report",
        ),
    params:
        config=canonical(config),
    log:
        "results/logs/report.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(2000),
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/report.py"


rule model_card:
    input:
        student="results/general/{student}",
        teacher="results/teacher/model",
        evals=evaluation_targets(),
        bench="results/bench/{student}.json",
        teacher_bench="results/bench/teacher.json",
    output:
        model=directory("results/models/{student}"),
    params:
        student=student_block,
        teacher=block("teacher"),
        tokenizer=block("tokenizer"),
        corpus={name: block(name) for name in ("sources", "corpus", "segmentation", "masking")},
    log:
        "results/logs/model_card/{student}.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(2000),
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/model_card.py"
