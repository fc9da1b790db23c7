"""Task kinds: each kind of task (classification, span QA, multiple choice) as one class.

Adding a kind is one module with a `TaskKind` subclass, listed in `KINDS`, and registry entries
(`wwmdistill.tasks.registry`) whose `kind` names it.
"""

from wwmdistill.kinds.base import MODEL_INPUTS, TaskKind
from wwmdistill.kinds.classification import Classification
from wwmdistill.kinds.multiple_choice import MultipleChoice
from wwmdistill.kinds.span_qa import SpanQA

KINDS: dict[str, TaskKind] = {
    kind.name: kind for kind in (Classification(), SpanQA(), MultipleChoice())
}


def kind_of(name: str, where: str = "task") -> TaskKind:
    """The kind called `name`; an unknown one is an error naming `where` and the known kinds."""
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"{where}: unknown task kind {name!r}; known kinds: {sorted(KINDS)}")
    return kind


__all__ = ["KINDS", "MODEL_INPUTS", "TaskKind", "kind_of"]
