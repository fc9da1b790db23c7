# Helpers for the stages: config blocks as params, shard lists, source inputs.
import copy
import re
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from wwmdistill.config_check import normalise_paths
from wwmdistill.content import ContentDigests
from wwmdistill.download.sources import source_inputs
from wwmdistill.kinds import kind_of
from wwmdistill.settings import ClaimsSettings
from wwmdistill.settings.claims import CHAR_TEACHER
from wwmdistill.tasks import plan_task
from wwmdistill.tasks.registry import TASKS as REGISTRY
from wwmdistill.tasks.registry import finetune_recipe, get_spec

DOWNLOAD_DIR = Path("results/download")
DATA_ROOT = Path(config["data_root"])
CONTENT = ContentDigests()
# Values of model and tokenizer settings that name a stage rather than files on disk.
STAGE_KEYWORDS = ("train", "scratch")
SHARDS = [f"{i:05d}" for i in range(config["corpus"]["shards"])]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def canonical(value):
    """Sorted keys all the way down, so reordering a config block never triggers a rerun."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def memory_per_attempt(base_mb):
    """mem_mb of a job: base_mb, then twice and three times that on retries after an OOM kill."""
    return lambda wildcards, attempt: base_mb * attempt


def training_resources(settings_of):
    """gpu, nodes and the Slurm task layout of a training job from its config block.

    `settings_of(wildcards)` gives the block holding gpus and nodes. One node: a `gpu` resource,
    which the workstation profile caps and the Slurm plugin turns into --gpus. Several nodes:
    per-node GPUs as gres, one task per node, and `mpi` so that the plugin's job step leaves the
    `srun` to the job (wwmdistill.launch starts torchrun on every node with it). None leaves a
    resource out.
    """

    def nodes(wildcards):
        return settings_of(wildcards)["nodes"]

    def several(wildcards):
        return nodes(wildcards) > 1

    def gpus(wildcards):
        return settings_of(wildcards)["gpus"]

    return {
        "gpu": lambda wildcards: 0 if several(wildcards) else gpus(wildcards),
        "nodes": nodes,
        "gres": lambda wildcards: (
            f"gpu:{gpus(wildcards)}" if several(wildcards) and gpus(wildcards) else None
        ),
        "tasks": lambda wildcards: nodes(wildcards) if several(wildcards) else None,
        # Else the plugin turns tasks into --ntasks-per-gpu for a job with GPUs.
        "tasks_per_gpu": lambda wildcards: 0 if several(wildcards) else None,
        "mpi": lambda wildcards: "srun" if several(wildcards) else None,
    }


def block(name):
    return canonical(config[name])


def shard_paths(stage):
    return expand(f"results/{stage}/{{shard}}.arrow", shard=SHARDS)


def downloaded_sources():
    return [name for name, spec in config["sources"].items() if spec["type"] in ("url", "hf")]


# Files from outside results/ (corpora, task files, word lists, local models) are `ancient`: a
# touched file reruns nothing. Their content digest is a param instead, so an edited one reruns
# exactly its consumers (wwmdistill.content).
def external(paths):
    return [ancient(path) for path in paths]


def local_paths(*settings):
    """Those settings that name a file or directory on disk (not a hub id or a stage keyword)."""
    return [s for s in settings if s and s not in STAGE_KEYWORDS and Path(s).exists()]


def content_of(paths):
    """The digest of the files at `paths`, or None when there are none (the param then stays)."""
    return CONTENT.of(paths) if paths else None


def corpus_source_inputs(wildcards):
    """Each source's inputs under its own name (source_<name>), so the job reads them rather than
    looking for the files again: a download manifest, or local and package files (external)."""
    named = {}
    for name, spec in sorted(config["sources"].items()):
        paths = source_inputs(name, spec, data_root=DATA_ROOT, download_dir=DOWNLOAD_DIR)
        named[f"source_{name}"] = paths if spec["type"] in ("url", "hf") else external(paths)
    return named


def corpus_files():
    """The local and package files of the sources, whose content digest is a param."""
    paths = []
    for name, spec in sorted(config["sources"].items()):
        if spec["type"] not in ("url", "hf"):
            paths += source_inputs(name, spec, data_root=DATA_ROOT, download_dir=DOWNLOAD_DIR)
    return paths


def corpus_data_root():
    """data_root when a corpus source reads from it, so moving task files reruns no corpus."""
    local = any(spec["type"] == "local" for spec in config["sources"].values())
    return config["data_root"] if local else None


def model_location(setting, stage_dir):
    """Where a model named in the config lives: a stage output (train or hub id) or a local path."""
    if setting == "train" or (HUB_ID.match(setting) and not Path(setting).exists()):
        return stage_dir
    if Path(setting).exists():
        return setting
    raise ValueError(f"config: {setting!r} is neither 'train', an existing path nor a hub id")


def segmenter_model():
    seg = config["segmentation"]
    if seg["backend"] != "ltp":
        return []
    stage_dir = "results/segmenter/model"
    location = model_location(seg["ltp"]["model"], stage_dir)
    return [location] if location == stage_dir else external([location])


def segmentation_files():
    """What segmentation reads from outside results/: the user dictionary and a local LTP model."""
    seg = config["segmentation"]
    model = seg["ltp"]["model"] if seg["backend"] == "ltp" else None
    return local_paths(seg["user_dict"], model)


def segmenter_eval_targets():
    has_gold = any(spec["format"] == "pos_tagged" for spec in config["sources"].values())
    return ["results/segmenter/eval.json"] if has_gold else []


def training_shards(stage):
    """Shards that train the teacher and students: all but the last, held out when there are two."""
    paths = shard_paths(stage)
    return paths[:-1] if len(paths) > 1 else paths


def heldout_shards(stage):
    paths = shard_paths(stage)
    return paths[-1:] if len(paths) > 1 else []


def teacher_trains():
    teacher = config["teacher"]
    return teacher["source"] == "scratch" or teacher["adapt_steps"] > 0


def student_block(wildcards):
    return canonical(config["students"][wildcards.student])


def distill_shards(stage):
    """The training shards the students distil from: the first `logits.shards` (all: null)."""
    return training_shards(stage)[: config["logits"]["shards"]]


def cache_block():
    """What builds a logits shard: the block less `shards`, which only picks the shards."""
    return {key: value for key, value in block("logits").items() if key != "shards"}


def student_logits(wildcards):
    if config["students"][wildcards.student]["mode"] != "cached":
        return []
    return distill_shards("teacher/logits")


def registry_task_blocks():
    """The full block of every registry task: the config's own or an empty one, defaults filled.

    The schema fills them as it fills the config (snakemake's validate), with `finetune` left
    out so that it holds the generic defaults only; finetune_recipe then ranks the task's CLUE
    recipe, the top-level `finetune` block and the task's own above them, each with the keys the
    config writes (USER_CONFIG: the config before the schema filled it).
    """
    written = USER_CONFIG.get("tasks", {})
    for name in written:
        get_spec(name)  # an unknown task is refused before any job, naming its key
    everything = copy.deepcopy(USER_CONFIG)
    everything["tasks"] = {
        name: {key: value for key, value in written.get(name, {}).items() if key != "finetune"}
        for name in REGISTRY
    }
    validate(everything, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
    normalise_paths(everything)
    blocks = copy.deepcopy(everything["tasks"])
    for name, block in blocks.items():
        own = written.get(name, {}).get("finetune", {})
        block["finetune"] = finetune_recipe(
            name, block["finetune"], USER_CONFIG.get("finetune", {}), own
        )
    return blocks


TASK_CONFIGS = registry_task_blocks()


def task_config(task):
    """The full, defaulted block of any registry task, whether or not the config names it."""
    return TASK_CONFIGS[task]


# The config as the jobs see it (the report prints it): each task's resolved block, and the
# top-level finetune block as written rather than filled with the generic defaults it outranks.
config["tasks"] = {name: task_config(name) for name in config["tasks"]}
if "finetune" in USER_CONFIG:
    config["finetune"] = USER_CONFIG["finetune"]

# The tasks `rule all` evaluates (every registry task is a target), and the models evaluated on
# them: the teacher and every general student.
TASKS = sorted(config["tasks"])
def char_teacher_trains():
    """Whether the wwm_vs_char claim's character-masked teacher is pretrained: asked for, and
    the teacher itself is pretrained here."""
    asked = ClaimsSettings.from_config(config.get("claims")).wwm_vs_char.enabled
    return asked and config["teacher"]["source"] == "scratch"


STUDENTS = sorted(config["students"])
# Every base model is fine-tuned and a row of each task's table; teacher_char only for the claim.
TEACHERS = ["teacher", CHAR_TEACHER] if char_teacher_trains() else ["teacher"]
MODELS = [*TEACHERS, *STUDENTS]
SEEDS = config["evaluation"]["seeds"]
# Stages with per-task outputs: results/{stage}/{task}...
TASK_STAGES = ("tasks", "finetune", "augment", "task_distill", "deploy", "eval")


def alternatives(names):
    """A wildcard constraint matching exactly these names (or nothing when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


# Blocks of a task read by later stages: a change to them never rebuilds the task's data.
LATER_STAGES = ("finetune", "augment", "task_distill")


def task_block(wildcards):
    """What builds the task's Arrow files: its block less the later stages' blocks."""
    spec = canonical(task_config(wildcards.task))
    return {key: value for key, value in spec.items() if key not in LATER_STAGES}


def finetune_block(wildcards):
    """The task's recipe with the teacher's learning rate (the stages that use the teacher)."""
    return model_recipe(wildcards.task, "teacher")


def model_finetune_block(wildcards):
    """The task's recipe for one model: its own learning rate, nobody else's."""
    return model_recipe(wildcards.task, wildcards.model)


def model_recipe(task, model):
    recipe = canonical(task_config(task)["finetune"])
    rates = recipe.pop("learning_rates")
    # The character-masked teacher is fine-tuned exactly as the teacher is.
    named = "teacher" if model == CHAR_TEACHER else model
    return recipe | {"learning_rate": rates.get(named, recipe["learning_rate"])}


ANNOUNCED_TASKS = set()


def announced_task_files(wildcards):
    """The task's files under data_root; where its data comes from is said once per task, on
    Snakemake's own output (a job's output goes to its log). A partial set of files stops the
    DAG here, naming the missing ones."""
    plan = plan_task(wildcards.task, task_block(wildcards), DATA_ROOT)
    if wildcards.task not in ANNOUNCED_TASKS:
        ANNOUNCED_TASKS.add(wildcards.task)
        (logger.warning if plan.downloads else logger.info)(plan.describe())
    return external([str(path) for path in plan.files])


def task_content(wildcards):
    return content_of(plan_task(wildcards.task, task_block(wildcards), DATA_ROOT).files)


def augment_content(wildcards):
    augment = task_config(wildcards.task)["augment"]
    return content_of(local_paths(augment["stopwords"], augment["synonyms"]) + segmentation_files())


def model_dir(model):
    """The directory a model name stands for: a teacher's or a general student's."""
    if model == "teacher":
        return "results/teacher/model"
    if model == CHAR_TEACHER:
        return "results/claims/teacher_char/model"
    return f"results/general/{model}"


def base_model(wildcards):
    return model_dir(wildcards.model)


def evaluation_targets():
    return expand("results/eval/{task}.json", task=TASKS)


# Task distillation: which tasks, students and variants ("td", and "td_noaug" for the ablation).
def task_distill_block(task):
    return task_config(task)["task_distill"]


def distilled_tasks():
    return [task for task in TASKS if task_distill_block(task)["enabled"]]


def task_distill_students(task):
    chosen = task_distill_block(task)["students"]
    return STUDENTS if chosen is None else chosen


def task_distill_variants(task):
    """td, and td_noaug for the ablation where a task's rows are its features (not span QA)."""
    ablation = kind_of(get_spec(task).kind).one_feature_per_row and task_distill_block(task)["ablation"]
    return ["td", "td_noaug"] if ablation else ["td"]


def teacher_seed(task):
    chosen = task_distill_block(task)["teacher_seed"]
    return SEEDS[0] if chosen is None else chosen


def finetuned_teacher(wildcards):
    return f"results/finetune/{wildcards.task}/teacher/seed{teacher_seed(wildcards.task)}"


def augment_slices(wildcards):
    count = task_config(wildcards.task)["augment"]["slices"]
    slices = [f"{index:03d}" for index in range(count)]
    return expand(f"results/augment/{wildcards.task}/slices/{{slice}}.arrow", slice=slices)


def eval_rows(task):
    """(model, stage, base) of every row of the task's table, in the table's order."""
    rows = [(model, "finetune", model) for model in MODELS]
    if task_distill_block(task)["enabled"]:
        stages = {"td": "task_distill", "td_noaug": "task_distill_no_aug"}
        for student in task_distill_students(task):
            for variant in task_distill_variants(task):
                rows.append((f"{student}.{variant}", stages[variant], student))
    return rows


def eval_predictions(task):
    return [
        f"results/eval/{task}/{model}/seed{seed}" for model, _, _ in eval_rows(task) for seed in SEEDS
    ]


def stage1_data(wildcards):
    if wildcards.variant == "td":
        return [f"results/augment/{wildcards.task}/train.arrow"]
    return []


def task_distill_params(wildcards):
    return canonical(task_config(wildcards.task)["task_distill"])


def task_distill_checkpoints(wildcards, stage):
    run = f"{wildcards.task}/{wildcards.student}/{wildcards.variant}/seed{wildcards.seed}"
    return f"results/checkpoints/task_distill/{run}/{stage}"


def unknown_task(wildcards):
    """The input of the unknown_task rule, a per-task target outside the registry: an error."""
    raise ValueError(
        f"results/{wildcards.stage}/{wildcards.name}{wildcards.rest}: unknown task "
        f"{wildcards.name!r}; expected one of {sorted(REGISTRY)}"
    )


def first_seed():
    """The seed whose models are deployed and timed (the eval table's speed is theirs)."""
    return min(SEEDS)


def row_model(task, row):
    """The model directory behind a row of a task's table, trained with the first seed."""
    seed = first_seed()
    if "." in row:
        student, variant = row.split(".", 1)
        return f"results/task_distill/{task}/{student}/{variant}/seed{seed}/model"
    return f"results/finetune/{task}/{row}/seed{seed}"


def deploy_source(wildcards):
    rows = [row for row, _, _ in eval_rows(wildcards.task)]
    if wildcards.row not in rows:
        raise ValueError(
            f"results/deploy/{wildcards.task}/{wildcards.row}: no such row on {wildcards.task}; "
            f"its table has {rows}"
        )
    return row_model(wildcards.task, wildcards.row)


def deploy_settings(wildcards):
    """The feature settings the row's model was evaluated with (its fine-tuning recipe)."""
    base = wildcards.row.split(".", 1)[0]
    return model_recipe(wildcards.task, "teacher" if "." in wildcards.row else base)


def deployed_rows(task):
    return [f"results/deploy/{task}/{row}" for row, _, _ in eval_rows(task)]


def deployed_models(task):
    return [row_model(task, row) for row, _, _ in eval_rows(task)]


def claims_block():
    """The claims block with its defaults, `tasks` resolved (null: the config's tasks). The
    schema fills none of it: a run without the claims target need not write the block."""
    settings = ClaimsSettings.from_config(config.get("claims"))
    resolved = settings.model_dump(mode="json")
    resolved["tasks"] = TASKS if settings.tasks is None else list(settings.tasks)
    return canonical(resolved)


def claims_evals():
    return expand("results/eval/{task}.json", task=claims_block()["tasks"])


def claims_teachers():
    """The teachers whose held-out masked-LM accuracy the wwm_vs_char claim compares."""
    return TEACHERS if char_teacher_trains() else []


def char_masking_block():
    """The teacher's masking with each token masked alone: the char teacher's only difference."""
    return block("masking") | {"unit": "token"}
