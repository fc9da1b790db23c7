"""The tokenizer stage: a WordPiece vocab trained on the corpus, or a teacher's own tokenizer.

Whatever the source, the result is a directory that `transformers.AutoTokenizer` loads as a fast
tokenizer, because whole-word masking maps segmenter words onto tokens through its offsets.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerBase

from wwmdistill.arrow_io import atomic_dir
from wwmdistill.artifacts.corpus import open_corpus
from wwmdistill.hub import hub_snapshot
from wwmdistill.progress import tqdm
from wwmdistill.settings import TokenizerSettings

if TYPE_CHECKING:
    from tokenizers import BertWordPieceTokenizer

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Files a tokenizer directory may hold; config.json tells AutoTokenizer the model type when
# tokenizer_config.json does not name a tokenizer class.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "config.json",
)


def _corpus_texts(corpus_shards: list[Path]) -> Iterator[str]:
    for path in tqdm(corpus_shards, desc="tokenizer corpus", unit="shard"):
        shard = open_corpus(path, columns=("text",))
        for batch in shard.iter_batches(["text"]):
            yield from (t for t in batch.column(0).to_pylist() if t)


def _pinned_pieces(
    trainer_tok: BertWordPieceTokenizer, shards: list[Path], settings: TokenizerSettings
) -> list[str]:
    """The '##' piece of every character that follows another inside a word, in code order.

    The trainer gives these pieces ids in hash-map order, and merge ties are broken by id, so
    the same corpus made another vocab on every run (huggingface/tokenizers#1794). Passed as
    special tokens they take fixed ids up front; they are in the vocab either way. Pinning
    holds only while the whole alphabet is kept: past `limit_alphabet` a pruned character's
    piece would take a slot of its own.
    """
    seen: set[str] = set()
    following: set[str] = set()
    for text in _corpus_texts(shards):
        normalized = trainer_tok.normalizer.normalize_str(text)
        for word, _ in trainer_tok.pre_tokenizer.pre_tokenize_str(normalized):
            seen.update(word)
            following.update(word[1:])
    if len(seen) > settings.limit_alphabet:
        log.warning(
            "tokenizer: %d characters exceed limit_alphabet %d; the vocab may differ between runs",
            len(seen),
            settings.limit_alphabet,
        )
        return []
    return [f"##{c}" for c in sorted(following)]


def train_wordpiece(corpus_shards: list[Path], out_dir: Path, settings: TokenizerSettings) -> None:
    """Train a BERT WordPiece vocab on corpus shards and save it as a fast BERT tokenizer dir.

    Every CJK character is its own pre-token (BertNormalizer handle_chinese_chars) and, with a
    large `limit_alphabet`, every character seen in the corpus stays in the vocab.
    """
    from tokenizers import BertWordPieceTokenizer

    if not corpus_shards:
        raise ValueError("tokenizer: source 'train' needs at least one corpus shard")
    trainer_tok = BertWordPieceTokenizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=None,
        lowercase=settings.lowercase,
    )
    shards = [Path(p) for p in corpus_shards]
    trainer_tok.train_from_iterator(
        _corpus_texts(shards),
        vocab_size=settings.vocab_size,
        min_frequency=settings.min_frequency,
        limit_alphabet=settings.limit_alphabet,
        special_tokens=[*SPECIAL_TOKENS, *_pinned_pieces(trainer_tok, shards, settings)],
        wordpieces_prefix="##",
        show_progress=False,
    )
    with atomic_dir(out_dir) as tmp_dir:
        trainer_tok.save_model(str(tmp_dir))
        # Built from vocab.txt (positional: `vocab_file=` is ignored in transformers 5) so the
        # saved tokenizer.json carries BERT's normalizer, pre-tokenizer and [CLS]/[SEP] template.
        hf_tok = BertTokenizer(str(tmp_dir / "vocab.txt"), do_lower_case=settings.lowercase)
        if len(hf_tok) != trainer_tok.get_vocab_size():
            raise RuntimeError(
                f"tokenizer: vocab.txt reloaded with {len(hf_tok)} tokens, "
                f"trained {trainer_tok.get_vocab_size()}"
            )
        hf_tok.save_pretrained(str(tmp_dir))
        load_tokenizer(tmp_dir)
    log.info("trained WordPiece vocab of %d tokens into %s", trainer_tok.get_vocab_size(), out_dir)


def _looks_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or Path(source).exists()


def fetch_tokenizer(source: str, revision: str | None, out_dir: Path) -> None:
    """Copy a teacher's tokenizer files from a local model dir or the hub into `out_dir`.

    Only tokenizer files (and config.json) are fetched, never weights. A source without a
    tokenizer.json gets one written, so the masking stage always reads a fast tokenizer.
    """
    with atomic_dir(out_dir) as tmp_dir:
        if _looks_local(source):
            src = Path(source).expanduser()
            if not src.is_dir():
                raise FileNotFoundError(f"tokenizer.source: local path {src} is not a directory")
            for name in TOKENIZER_FILES:
                if (src / name).is_file():
                    shutil.copy2(src / name, tmp_dir / name)
        else:
            hub_snapshot(
                source, revision, tmp_dir, patterns=list(TOKENIZER_FILES), key="tokenizer.source"
            )
        if not any((tmp_dir / name).is_file() for name in TOKENIZER_FILES[:-1]):
            raise FileNotFoundError(f"tokenizer.source: no tokenizer files in {source}")
        tok = load_tokenizer(tmp_dir)
        if not (tmp_dir / "tokenizer.json").is_file():
            tok.save_pretrained(str(tmp_dir))
    log.info("fetched tokenizer %s (revision %s) into %s", source, revision, out_dir)


def build_tokenizer(corpus_shards: list[Path], out_dir: Path, settings: TokenizerSettings) -> None:
    """The stage: train on the corpus when `source` is 'train', else fetch the named tokenizer."""
    if settings.source == "train":
        train_wordpiece(corpus_shards, out_dir, settings)
    else:
        fetch_tokenizer(settings.source, settings.revision, out_dir)


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer directory from disk only; refuse a slow tokenizer (it has no offsets)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer: {path} is not a directory")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"tokenizer: cannot load {path}: {err}") from err
    if not tok.is_fast:
        raise ValueError(f"tokenizer: {path} loads as a slow tokenizer; offsets need a fast one")
    for role in ("cls_token_id", "sep_token_id", "mask_token_id"):
        if getattr(tok, role) is None:
            raise ValueError(f"tokenizer: {path} has no {role.removesuffix('_id')}")
    return tok


def copy_tokenizer_files(tokenizer_dir: Path, model_dir: Path) -> None:
    """Put the tokenizer's files, byte for byte, beside a saved model.

    The tokenizer dir's config.json (a fetched teacher's) never replaces the model's own.
    """
    for name in TOKENIZER_FILES:
        if name != "config.json" and (Path(tokenizer_dir) / name).is_file():
            shutil.copyfile(Path(tokenizer_dir) / name, Path(model_dir) / name)


def tokenizer_fingerprint(path: Path) -> str:
    """Digest of the tokenizer files' names and bytes: changes exactly when the tokenization can.

    config.json is left out: a model directory carrying a copy of the tokenizer files has its own.
    """
    path = Path(path)
    digest = hashlib.sha256()
    names = set(TOKENIZER_FILES) - {"config.json"}
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name in names)
    if not files:
        raise FileNotFoundError(f"tokenizer: no tokenizer files in {path}")
    for file in files:
        digest.update(file.name.encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:32]


def random_replacement_ids(tok: PreTrainedTokenizerBase) -> list[int]:
    """Ids a masked token may be replaced with: the vocab minus special and placeholder tokens."""
    placeholder = re.compile(r"^(\[[^\]]+\]|<[^>]+>)$")
    special = set(tok.all_special_ids)
    vocab = tok.get_vocab()
    return sorted(i for t, i in vocab.items() if i not in special and not placeholder.match(t))
