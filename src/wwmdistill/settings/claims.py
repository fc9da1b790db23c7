"""Settings of the claims target (`results/claims.md`): which students and tasks replay the seeds'
claims, and the thresholds each claim states. Read by that target only (rules/claims.smk)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from wwmdistill.settings.base import Block, Int, Num, Seq

StudentRef = Annotated[str, Field(pattern="^[A-Za-z0-9_-]+$")]
# The eval-table row (and model name) of the wwm_vs_char claim's character-masked teacher.
CHAR_TEACHER = "teacher_char"
# A row of a task's eval table: a student, or its task-distilled row (`narrow.td`).
RowRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.(td|td_noaug))?$")]


class CacheClaim(Block):
    """seed 000: the top-k logit cache loses nothing. Two students that differ only in `mode`,
    compared downstream: non-inferiority of the cached one within `margin`"""

    where: ClassVar[str] = "claims.cache"

    cached: StudentRef = Field("first2", description="the student distilled from the logit cache")
    online: StudentRef = Field(
        "first2_online", description="the same student with the teacher in the loop (mode: online)"
    )
    margin: Num(gt=0) = Field(
        1.0, description="non-inferiority margin in metric points (0-100 scale)"
    )


class InitClaim(Block):
    """seeds 002, 003: a student initialised from the teacher's layers beats a random start of
    the same shape and budget (superiority)"""

    where: ClassVar[str] = "claims.init"

    from_teacher: StudentRef = Field("first2", description="initialised from the teacher")
    random: StudentRef = Field("random2", description="init: scratch, the same shape and training")


class AugmentationClaim(Block):
    """seed 001: task distillation with augmentation beats it without, which beats plain
    fine-tuning, on at least `min_tasks` tasks"""

    where: ClassVar[str] = "claims.augmentation"

    student: StudentRef = Field(
        "narrow", description="its rows {student}.td, {student}.td_noaug and {student}"
    )
    min_tasks: Int(ge=1) = 3


class SmallFastClaim(Block):
    """seed 004: a student at <= `max_parameters` of the teacher's parameters keeps
    >= `min_score` of its score at >= `min_speedup` times its CPU throughput, on at least
    `min_tasks` tasks"""

    where: ClassVar[str] = "claims.small_fast"

    student: RowRef = Field(
        "narrow", description="a row of the eval tables: a student, or `{student}.td`"
    )
    max_parameters: Num(gt=0, le=1) = Field(0.25, description="parameters over the teacher's")
    min_score: Num(gt=0, le=1) = Field(0.95, description="share of the teacher's score kept")
    min_speedup: Num(gt=0) = Field(
        4.0, description="PyTorch throughput at batch 16 over the teacher's, at the task's length"
    )
    min_tasks: Int(ge=1) = 3


class WwmVsCharClaim(Block):
    """seed 003: whole-word masking beats character masking for pretraining. A second teacher,
    `teacher_char`, pretrained like the teacher on the same rows with each token masked alone,
    fine-tuned like it: superiority of the teacher downstream, on every task, beside both
    teachers' masked-LM accuracy on the same held-out whole words"""

    where: ClassVar[str] = "claims.wwm_vs_char"

    enabled: bool = Field(
        False,
        description="pretrain the character-masked teacher, a row of every task's table (as long "
        "as the teacher's pretraining again); a scratch teacher only",
    )


class ClaimsSettings(Block):
    """the seeds' claims replayed on this run's eval tables (`snakemake results/claims.md`), each
    a paired t interval over the fine-tuning seeds with a verdict (wwmdistill.claims)"""

    where: ClassVar[str] = "claims"

    tasks: Seq(Annotated[str, Field(pattern="^[a-z0-9_]+$")], min_length=1) | None = Field(
        None, description="tasks the claims are replayed on (null: the config's tasks)"
    )
    confidence: Num(gt=0, lt=1) = Field(0.95, description="of the paired t intervals")
    cache: CacheClaim = CacheClaim()
    init: InitClaim = InitClaim()
    augmentation: AugmentationClaim = AugmentationClaim()
    small_fast: SmallFastClaim = SmallFastClaim()
    wwm_vs_char: WwmVsCharClaim = WwmVsCharClaim()
