"""Task kinds: multiple choice's features, decoding, batches and loss; the kind lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import BertConfig, BertForMultipleChoice, BertTokenizer

from wwmdistill.distill.losses import soft_cross_entropy
from wwmdistill.kinds import KINDS, kind_of
from wwmdistill.kinds.multiple_choice import MAX_CHOICES, PADDING_CHOICE

MC = KINDS["multiple_choice"]
ROWS = {
    "id": ["q1", "q2"],
    "context": ["男：今天下雨了。女：那我们在家吧。", "他喜欢读书。"],
    "question": ["他们在哪里？", "他喜欢什么？"],
    "choices": [["家里", "公园", "学校"], ["读书", "跑步", "唱歌", "画画"]],
    "label": [0, 0],
}


class Settings:
    max_seq_len = 24


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizer:
    chars = sorted(
        {ch for column in ROWS.values() for v in column for ch in str(v)} | set(PADDING_CHOICE)
    )
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab.write_text("\n".join(special + [c for c in chars if c.strip()]) + "\n", encoding="utf-8")
    return BertTokenizer(str(vocab))


def table() -> pa.Table:
    return pa.table(ROWS, schema=MC.row_schema)


def test_every_question_gets_four_options_padded_as_clue_does(tokenizer) -> None:
    features = MC.eval_features(table(), tokenizer, Settings())
    assert features["options"] == [3, 4]
    for row in features["input_ids"]:
        assert len(row) == MAX_CHOICES
        assert all(len(ids) <= Settings.max_seq_len for ids in row)
    padded = tokenizer.decode(features["input_ids"][0][3]).replace(" ", "")
    # The document is cut, never the question or the option.
    assert padded.endswith(f"[SEP]他们在哪里？{PADDING_CHOICE}[SEP]")
    assert tokenizer.decode(features["input_ids"][1][2]).replace(" ", "").endswith("唱歌[SEP]")


def test_a_padding_option_is_never_predicted() -> None:
    logits = np.array([[0.0, 1.0, 2.0, 9.0], [5.0, 1.0, 2.0, 3.0]])
    predicted = MC.decode(logits, table(), {"options": [3, 4]}, Settings())
    assert predicted == {"q1": 2, "q2": 0}
    assert MC.score(table(), predicted) == {"accuracy": 50.0}


def test_batches_are_rows_by_options_by_tokens_and_stage1_sees_one_sequence_per_option(
    tokenizer,
) -> None:
    features = MC.train_features(table(), tokenizer, Settings())
    rows = [{key: features[key][i] for key in features} for i in range(2)]
    batch = MC.collator(tokenizer)(rows)
    length = batch["input_ids"].shape[-1]
    assert batch["input_ids"].shape == (2, MAX_CHOICES, length)
    assert batch["labels"].tolist() == [0, 0]
    flat = MC.encoder_inputs(batch)
    assert flat["input_ids"].shape == (2 * MAX_CHOICES, length)
    assert torch.equal(flat["attention_mask"][3], batch["attention_mask"][0, 3])


def test_prediction_distillation_is_soft_cross_entropy_over_the_options(tokenizer) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertForMultipleChoice(config).eval()
    features = MC.train_features(table(), tokenizer, Settings())
    batch = MC.collator(tokenizer)([{k: features[k][i] for k in features} for i in range(2)])
    labels = {"labels": batch.pop("labels")}
    out = model(**batch)
    assert out.logits.shape == (2, MAX_CHOICES)
    teacher = {"teacher_logits": torch.tensor([[2.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.0, 0.0]])}
    soft = MC.distillation_loss(out, teacher, labels, batch["attention_mask"], 1.0, 0.0)
    by_hand = -(teacher["teacher_logits"].softmax(-1) * out.logits.log_softmax(-1)).sum(-1).mean()
    assert soft.item() == pytest.approx(by_hand.item(), abs=1e-6)
    with_gold = MC.distillation_loss(out, teacher, labels, batch["attention_mask"], 1.0, 0.5)
    gold = torch.nn.functional.cross_entropy(out.logits, labels["labels"])
    assert with_gold.item() == pytest.approx((soft + 0.5 * gold).item(), abs=1e-6)
    assert soft.item() == pytest.approx(
        soft_cross_entropy(out.logits, teacher["teacher_logits"], 1.0).item()
    )


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"results/tasks/x: unknown task kind 'ranking'.*'qa'"):
        kind_of("ranking", "results/tasks/x")


def test_every_kind_writes_rows_its_schema_holds() -> None:
    for kind in KINDS.values():
        assert kind.row_schema.names[0] == "id"
        assert kind.primary_metric in kind.metrics
        assert set(kind.augmented_columns) <= set(kind.row_schema.names)


def test_multiple_choice_predictions_are_clue_lines_of_option_indices(tmp_path: Path) -> None:
    path = MC.write_predictions(tmp_path, "c3", [], "dev", {"q1": 2, "q2": 0}, submission=False)
    assert path.name == "dev_predictions.jsonl"
    assert (
        path.read_text(encoding="utf-8") == '{"id": "q1", "label": 2}\n{"id": "q2", "label": 0}\n'
    )
