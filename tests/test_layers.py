"""Layer mappings and Q/K/V capture on tiny BERT models."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

from wwmdistill.distill.layers import AttentionCapture, layer_mapping, mean_of
from wwmdistill.distill.losses import attention_score_mse, relation_kl


def test_uniform_mapping_is_tinybert():
    assert layer_mapping("uniform", 12, 4, target="attention") == [[2], [5], [8], [11]]
    assert layer_mapping("uniform", 12, 4, target="hidden") == [[0], [3], [6], [9], [12]]
    assert layer_mapping("uniform", 4, 4, target="attention") == [[0], [1], [2], [3]]
    with pytest.raises(ValueError, match="layer_map: uniform"):
        layer_mapping("uniform", 12, 5, target="hidden")


def test_explicit_mapping_maps_outputs_of_the_named_layers():
    distilbert = [0, 2, 4, 7, 9, 11]
    assert layer_mapping(distilbert, 12, 6, target="attention") == [[j] for j in distilbert]
    assert layer_mapping(distilbert, 12, 6, target="hidden") == [
        [0],
        [1],
        [3],
        [5],
        [8],
        [10],
        [12],
    ]
    assert layer_mapping([[0, 1], 3], 4, 2, target="attention") == [[0, 1], [3]]
    with pytest.raises(ValueError, match="layer_map: entry \\[12\\]"):
        layer_mapping([0, 12], 12, 2, target="attention")
    with pytest.raises(ValueError, match="layer_map: 3 entries"):
        layer_mapping([0, 1, 2], 12, 2, target="attention")


def test_mean_mapping_groups_consecutive_layers():
    assert layer_mapping({"mean": 6}, 12, 2, target="attention") == [
        [0, 1, 2, 3, 4, 5],
        [6, 7, 8, 9, 10, 11],
    ]
    assert layer_mapping({"mean": 6}, 12, 2, target="hidden") == [
        [0],
        [1, 2, 3, 4, 5, 6],
        [7, 8, 9, 10, 11, 12],
    ]
    with pytest.raises(ValueError, match="layer_map: mean groups of 6"):
        layer_mapping({"mean": 6}, 12, 3, target="hidden")
    with pytest.raises(ValueError, match="layer_map: expected"):
        layer_mapping("linear", 12, 3, target="hidden")


def test_mean_of_averages_a_group():
    states = [torch.full((2, 3), float(i)) for i in range(4)]
    assert torch.equal(mean_of(states, [1, 2, 3]), torch.full((2, 3), 2.0))
    assert mean_of(states, [3]) is states[3]


def tiny_bert(implementation: str, cls=BertModel, heads: int = 4):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=heads,
        intermediate_size=64,
        attn_implementation=implementation,
    )
    return cls(config).eval()


def batch():
    input_ids = torch.tensor([[2, 5, 9, 11, 7, 3], [2, 8, 6, 3, 0, 0]])
    attention_mask = (input_ids != 0).long()
    return input_ids, attention_mask


def test_captured_scores_softmax_to_the_eager_attention_probabilities():
    model = tiny_bert("eager")
    input_ids, mask = batch()
    with AttentionCapture(model) as capture:
        output = model(input_ids=input_ids, attention_mask=mask, output_attentions=True)
    assert len(capture) == 3
    assert capture.q(0).shape == (2, 4, 6, 8)
    for layer, probabilities in enumerate(output.attentions):
        captured = capture.scores(layer, mask).softmax(-1)
        torch.testing.assert_close(captured, probabilities, atol=1e-6, rtol=0)
    assert all(not linear._forward_hooks for linears in capture._linears for linear in linears)


def test_capture_does_not_depend_on_the_attention_implementation():
    input_ids, mask = batch()
    scores = {}
    for implementation in ("eager", "sdpa"):
        model = tiny_bert(implementation, BertForMaskedLM)
        with AttentionCapture(model) as capture:
            model(input_ids=input_ids, attention_mask=mask)
        scores[implementation] = [capture.scores(i) for i in range(len(capture))]
    assert len(scores["sdpa"]) == 3  # the MLM head adds no attention block
    for eager, sdpa in zip(scores["eager"], scores["sdpa"], strict=True):
        torch.testing.assert_close(eager, sdpa)


def test_losses_on_captured_states_are_zero_for_a_copy_and_train_the_student():
    input_ids, mask = batch()
    teacher, student = tiny_bert("sdpa"), tiny_bert("sdpa")
    with AttentionCapture(teacher) as t_capture, torch.no_grad():
        teacher(input_ids=input_ids, attention_mask=mask)
    with AttentionCapture(student) as s_capture:
        student(input_ids=input_ids, attention_mask=mask)
    layers = range(len(s_capture))
    pairs = ([s_capture.scores(i) for i in layers], [t_capture.scores(i) for i in layers])
    assert attention_score_mse(*pairs, mask).item() == pytest.approx(0.0, abs=1e-10)
    same = relation_kl(s_capture.qkv(2), t_capture.qkv(2), mask, relation_heads=2)
    assert same.item() == pytest.approx(0.0, abs=1e-6)

    other = tiny_bert("sdpa", heads=2)
    torch.manual_seed(1)
    for parameter in other.parameters():
        parameter.data.normal_(0, 0.2)
    with AttentionCapture(other) as o_capture:
        other(input_ids=input_ids, attention_mask=mask)
    loss = relation_kl(o_capture.qkv(2), t_capture.qkv(2), mask, relation_heads=4)
    loss.backward()
    assert loss.item() > 0
    assert other.encoder.layer[2].attention.self.query.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="heads"):
        attention_score_mse([o_capture.scores(0)], [t_capture.scores(0)], mask)


def test_capture_needs_a_forward_pass_and_an_attention_model():
    model = tiny_bert("sdpa")
    with AttentionCapture(model) as capture, pytest.raises(RuntimeError, match="has not run"):
        capture.q(0)
    with pytest.raises(ValueError, match="no self-attention"):
        AttentionCapture(torch.nn.Linear(2, 2))
