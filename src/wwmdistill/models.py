"""Hugging Face models: their directories (checks, fingerprints, vocab checks), loading masked-LM
models safely, their MLM head and their parameter count."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from wwmdistill.arrow_io import ArtifactError

if TYPE_CHECKING:
    import torch

# Hugging Face weight files, sharded or not; safetensors first. Other *.bin files in a checkpoint
# (training_args.bin) are pickles and never weights.
WEIGHT_GLOBS = ("model*.safetensors", "pytorch_model*.bin")
# The fast tokenizer every tokenizer directory of the workflow holds, copied beside each model.
TOKENIZER_FILE = "tokenizer.json"


class ModelMismatchError(ValueError):
    """A model does not fit the data or the artifact it is used with."""


def weight_files(model_dir: Path) -> list[Path]:
    for pattern in WEIGHT_GLOBS:
        files = sorted(Path(model_dir).glob(pattern))
        if files:
            return files
    raise ArtifactError(f"{model_dir}: no weights (model.safetensors) in the model directory")


def config_file(model_dir: str | Path) -> Path:
    """A model directory's config.json; transformers' own error for a missing one misleads."""
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise ArtifactError(f"{model_dir}: missing config.json")
    return config


def require_model_dir(model_dir: str | Path, *, need_tokenizer: bool = False) -> Path:
    """`model_dir`, once it holds config.json, weights and (if needed) the tokenizer.

    transformers reports a missing file deep inside the job that loads the model, without naming
    the directory; every consumer of a model directory checks it here first.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir}: missing (not a model directory)")
    config_file(model_dir)
    weight_files(model_dir)
    if need_tokenizer and not (model_dir / TOKENIZER_FILE).is_file():
        raise ArtifactError(f"{model_dir}: missing {TOKENIZER_FILE}")
    return model_dir


def model_fingerprint(model_dir: str | Path) -> str:
    """Digest of a model's config and weights: what a cache made by this model records."""
    model_dir = Path(model_dir)
    config = config_file(model_dir)
    digest = hashlib.sha256()
    digest.update(json.dumps(json.loads(config.read_text()), sort_keys=True).encode())
    for path in weight_files(model_dir):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def weight_keys(model_dir: Path) -> set[str]:
    """Parameter names stored in a model directory (safetensors, else a weights-only torch load)."""
    from safetensors import safe_open

    keys: set[str] = set()
    for path in weight_files(model_dir):
        if path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as handle:
                keys.update(handle.keys())
        else:
            import torch

            keys.update(torch.load(path, map_location="meta", weights_only=True, mmap=True))
    return keys


def refuse_remote_code(model_dir: str | Path, trusted: bool, key: str) -> None:
    """Stop before a model whose config.json points at Python files runs them, unless `key` says so.

    transformers would refuse too, but naming its own argument; the user's switch is a config key.
    """
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise ArtifactError(f"{model_dir}: missing config.json")
    auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    if auto_map and not trusted:
        raise ModelMismatchError(
            f"{config}: the model ships its own code ({', '.join(sorted(set(auto_map.values())))}) "
            f"and {key} is false; read that code, then set {key}: true to run it"
        )


def load_masked_lm(model_dir: str | Path, *, trust_remote_code: bool = False):
    """Load a masked-LM model from a local directory, refusing one without trained head weights.

    Safetensors are preferred; a `.bin` checkpoint is read with `weights_only` (transformers 5
    never unpickles code). A bare encoder would load with a randomly initialised head, so the
    stored weights must include the head module's.
    """
    from transformers import AutoConfig, AutoModelForMaskedLM

    model_dir = require_model_dir(model_dir)
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if config.model_type == "bert":
        # HFL's RoBERTa-wwm checkpoints are BERT checkpoints: load them with BertForMaskedLM.
        from transformers import BertForMaskedLM

        model = BertForMaskedLM.from_pretrained(model_dir)
    else:
        model = AutoModelForMaskedLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    heads = [name for name, child in model.named_children() if child is not model.base_model]
    if model.get_output_embeddings() is None or not any(
        key.split(".", 1)[0] in heads for key in weight_keys(model_dir)
    ):
        raise ModelMismatchError(
            f"{model_dir}: its weights hold no masked-LM head ({', '.join(heads)}); a masked-LM "
            "checkpoint is needed, not a bare encoder"
        )
    return model


def check_vocab(
    model_dir: str | Path, tokenizer_dir: str | Path, *, trust_remote_code: bool = False
) -> None:
    """The model's vocabulary must be the tokenizer's that made the masked shards."""
    from transformers import AutoConfig

    from wwmdistill.tokenizer import load_tokenizer

    config_file(model_dir)
    config = AutoConfig.from_pretrained(Path(model_dir), trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(Path(tokenizer_dir))
    if config.vocab_size != len(tokenizer):
        raise ModelMismatchError(
            f"{model_dir}: vocab_size {config.vocab_size} but the tokenizer in {tokenizer_dir} "
            f"has {len(tokenizer)} tokens; the teacher must use the tokenizer of the masked shards"
        )
    model_vocab = Path(model_dir) / "vocab.txt"
    tokenizer_vocab = Path(tokenizer_dir) / "vocab.txt"
    both = model_vocab.is_file() and tokenizer_vocab.is_file()
    if both and model_vocab.read_bytes() != tokenizer_vocab.read_bytes():
        raise ModelMismatchError(
            f"{model_vocab} differs from {tokenizer_vocab}: the teacher must use the "
            "tokenizer of the masked shards"
        )


def mlm_head(model: torch.nn.Module) -> torch.nn.Module:
    """The module that maps the base model's last hidden states to vocabulary logits.

    Masked-LM models built as `base model -> head` (BERT's `cls`, RoBERTa's `lm_head`) have
    exactly two children, the head being the one holding the output embeddings.
    """
    base, out = model.base_model, model.get_output_embeddings()
    children = list(model.children())
    heads = [c for c in children if c is not base and any(m is out for m in c.modules())]
    if len(children) != 2 or len(heads) != 1:
        raise ModelMismatchError(
            f"{type(model).__name__}: not a base-model-plus-MLM-head layout; the held-out "
            "eval and the logit cache apply the head at the masked positions only"
        )
    return heads[0]


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied decoder counts once)."""
    return sum(p.numel() for p in model.parameters())
