"""Distillation losses against values computed independently (float64 loops over tiny tensors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wwmdistill.distill.losses import (
    attention_score_mse,
    cosine_loss,
    hidden_mse,
    mlm_loss,
    relation_kl,
    topk_kd_loss,
)

# Two positions over a vocabulary of 5.
TEACHER = torch.tensor([[3.0, 1.0, 0.5, -1.0, 2.0], [0.0, 4.0, 1.0, 1.5, -2.0]])
STUDENT = torch.tensor([[1.0, 0.0, 2.0, -0.5, 1.5], [0.5, 2.0, 0.0, 1.0, 0.5]])


def softmax(row, temperature=1.0):
    exps = [math.exp(x / temperature) for x in row]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def topk(row, k):
    """Teacher ids in descending logit order and their logits, as the cache stores them."""
    ids = sorted(range(len(row)), key=lambda i: -row[i])[:k]
    return ids, [row[i] for i in ids]


def cached(k):
    ids, logits = zip(*(topk(row.tolist(), k) for row in TEACHER), strict=True)
    return torch.tensor(ids), torch.tensor(logits)


def lumped_kl(teacher_row, student_row, k):
    """KL with the teacher's non-top-k ids merged into one bucket, on both sides, at T=1."""
    ids, _ = topk(teacher_row, k)
    p, q = softmax(teacher_row), softmax(student_row)
    p_buckets = [p[i] for i in ids] + [1.0 - sum(p[i] for i in ids)]
    q_buckets = [q[i] for i in ids] + [1.0 - sum(q[i] for i in ids)]
    return kl(p_buckets, q_buckets)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_all_ids_equals_full_vocabulary_kl(temperature):
    ids, logits = cached(5)
    full = (
        F.kl_div(
            F.log_softmax(STUDENT / temperature, -1),
            F.softmax(TEACHER / temperature, -1),
            reduction="batchmean",
        )
        * temperature**2
    )
    loss = topk_kd_loss(STUDENT, ids, logits, temperature=temperature)
    assert loss.item() == pytest.approx(full.item(), abs=1e-6)
    # With the logsumexp and k = V the tail bucket is empty: same value, finite gradient.
    student = STUDENT.clone().requires_grad_()
    with_lse = topk_kd_loss(
        student, ids, logits, temperature=temperature, logsumexp=TEACHER.logsumexp(-1)
    )
    with_lse.backward()
    assert with_lse.item() == pytest.approx(full.item(), abs=1e-5)
    assert torch.isfinite(student.grad).all()


def test_tail_bucket_at_t1_is_the_lumped_full_kl():
    ids, logits = cached(2)
    expected = (
        sum(lumped_kl(t.tolist(), s.tolist(), 2) for t, s in zip(TEACHER, STUDENT, strict=True)) / 2
    )
    loss = topk_kd_loss(STUDENT, ids, logits, temperature=1.0, logsumexp=TEACHER.logsumexp(-1))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # By hand: row 0, teacher ids 0 and 4 with .6236 .2294 and tail .1470, student .1678 .2767
    # and tail .5554: KL .5800; row 1, ids 1 and 3, .8676 .0712 tail .0612 against .5130 .1887
    # tail .2983: KL .2895.
    assert expected == pytest.approx((0.5800 + 0.2895) / 2, abs=1e-4)


def test_tail_bucket_keeps_its_t1_mass_at_other_temperatures():
    temperature = 2.0
    ids, logits = cached(2)
    expected = 0.0
    for t_row, s_row in zip(TEACHER.tolist(), STUDENT.tolist(), strict=True):
        top, top_logits = topk(t_row, 2)
        tail = 1.0 - sum(softmax(t_row)[i] for i in top)
        p = [x * (1.0 - tail) for x in softmax(top_logits, temperature)] + [tail]
        q_full = softmax(s_row, temperature)
        q = [q_full[i] for i in top] + [1.0 - sum(q_full[i] for i in top)]
        expected += kl(p, q) / 2
    loss = topk_kd_loss(
        STUDENT, ids, logits, temperature=temperature, logsumexp=TEACHER.logsumexp(-1)
    )
    assert loss.item() == pytest.approx(expected * temperature**2, abs=1e-6)


def test_without_tail_the_student_is_not_renormalised_over_the_top_k():
    temperature = 2.0
    ids, logits = cached(2)
    expected = 0.0
    for t_row, s_row in zip(TEACHER.tolist(), STUDENT.tolist(), strict=True):
        top, top_logits = topk(t_row, 2)
        p = softmax(top_logits, temperature)
        q_full = softmax(s_row, temperature)
        expected += sum(pi * math.log(pi / q_full[i]) for pi, i in zip(p, top, strict=True)) / 2
    loss = topk_kd_loss(STUDENT, ids, logits, temperature=temperature, t2_scaling=False)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_t2_scaling_and_soft_ce_is_kl_plus_teacher_entropy():
    ids, logits = cached(3)
    lse = TEACHER.logsumexp(-1)
    plain = topk_kd_loss(STUDENT, ids, logits, temperature=3.0, logsumexp=lse, t2_scaling=False)
    scaled = topk_kd_loss(STUDENT, ids, logits, temperature=3.0, logsumexp=lse)
    assert scaled.item() == pytest.approx(9.0 * plain.item(), rel=1e-6)

    entropy = 0.0
    for row in TEACHER.tolist():
        _, top_logits = topk(row, 3)
        p = softmax(top_logits, 2.0)
        entropy -= sum(x * math.log(x) for x in p) / 2
    kl_loss = topk_kd_loss(STUDENT, ids, logits, temperature=2.0, t2_scaling=False)
    ce_loss = topk_kd_loss(STUDENT, ids, logits, temperature=2.0, kind="soft_ce", t2_scaling=False)
    assert ce_loss.item() == pytest.approx(kl_loss.item() + entropy, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_at_t8_over_a_bert_vocabulary_is_as_close_to_float64_as_kl_div(seed):
    # KL x T^2 ~ 9 while cross-entropy x T^2 ~ 640: summed apart, they cancel to ~3e-6 in float32.
    temperature, positions, vocab, k = 8.0, 96, 21128, 128
    gen = torch.Generator().manual_seed(seed)
    student = torch.randn(positions, vocab, generator=gen) * 3
    teacher = torch.randn(positions, vocab, generator=gen) * 3
    s64, t64 = student.double() / temperature, teacher.double() / temperature
    log_q = F.log_softmax(s64, -1)
    full = F.kl_div(log_q, F.log_softmax(t64, -1), reduction="batchmean", log_target=True)
    ids = torch.arange(vocab).expand(positions, vocab)
    loss = topk_kd_loss(student, ids, teacher, temperature=temperature)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(full.item() * temperature**2, rel=1e-6, abs=0)

    # Top-k with the tail bucket, the same semantics in float64.
    top_logits, top_ids = teacher.topk(k, dim=-1)
    lse = teacher.logsumexp(-1)
    tail = 1.0 - torch.exp(top_logits.double() - lse.double()[:, None]).sum(-1, keepdim=True)
    p = torch.cat([F.softmax(top_logits.double() / temperature, -1) * (1.0 - tail), tail], -1)
    q_top = log_q.gather(-1, top_ids)
    q_tail = torch.log1p(-q_top.exp().sum(-1, keepdim=True))
    expected = (p * (p.log() - torch.cat([q_top, q_tail], -1))).sum() / positions
    loss = topk_kd_loss(student, top_ids, top_logits, temperature=temperature, logsumexp=lse)
    assert loss.item() == pytest.approx(expected.item() * temperature**2, rel=1e-6, abs=0)


def test_fp16_cache_and_half_precision_student_are_accepted():
    ids, logits = cached(5)
    exact = topk_kd_loss(STUDENT, ids, logits, temperature=2.0)
    half = topk_kd_loss(
        STUDENT.bfloat16(),
        ids.to(torch.int32),
        logits.half(),
        temperature=2.0,
        logsumexp=TEACHER.logsumexp(-1),
    )
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(exact.item(), abs=0.02)


def test_kd_loss_rejects_bad_input_and_handles_no_positions():
    ids, logits = cached(2)
    with pytest.raises(ValueError, match="kd: unknown kind"):
        topk_kd_loss(STUDENT, ids, logits, temperature=1.0, kind="mse")
    with pytest.raises(ValueError, match="temperature"):
        topk_kd_loss(STUDENT, ids, logits, temperature=0.0)
    with pytest.raises(ValueError, match="vocabulary"):
        topk_kd_loss(STUDENT[:, :3], ids + 2, logits, temperature=1.0)
    with pytest.raises(ValueError, match="logsumexp"):
        topk_kd_loss(STUDENT, ids, logits, temperature=1.0, logsumexp=torch.zeros(3))
    empty = torch.zeros(0, 5, requires_grad=True)
    loss = topk_kd_loss(empty, ids[:0], logits[:0], temperature=2.0)
    assert loss.item() == 0.0 and loss.requires_grad


def test_mlm_loss_is_mean_cross_entropy_over_labelled_positions():
    labels = torch.tensor([2, -100])
    expected = -math.log(softmax(STUDENT[0].tolist())[2])
    assert mlm_loss(STUDENT, labels).item() == pytest.approx(expected, abs=1e-6)
    both = mlm_loss(STUDENT, torch.tensor([2, 1])).item()
    expected_both = (expected - math.log(softmax(STUDENT[1].tolist())[1])) / 2
    assert both == pytest.approx(expected_both, abs=1e-6)


def test_cosine_loss_by_hand_and_with_a_projection():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    # 1 - 1/sqrt(2) for the first position, 0 for the second.
    assert cosine_loss(student, teacher).item() == pytest.approx((1 - 2**-0.5) / 2, abs=1e-6)
    reference = nn.CosineEmbeddingLoss()(student, teacher, torch.ones(2))
    assert cosine_loss(student, teacher).item() == pytest.approx(reference.item(), abs=1e-6)

    wide = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, -1.0]])
    with pytest.raises(ValueError, match="projection"):
        cosine_loss(student, wide)
    projection = nn.Linear(2, 3, bias=False)
    with torch.no_grad():  # student (a, b) -> (a, a + b, 0)
        projection.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    # (1, 1, 0) vs (1, 1, 0): 0; (0, 1, 0) vs (0, 2, -1): 1 - 2/sqrt(5).
    loss = cosine_loss(student, wide, projection)
    assert loss.item() == pytest.approx((1 - 2 / math.sqrt(5)) / 2, abs=1e-6)


def test_attention_score_mse_zeroes_padding_keys_and_sums_layers():
    mask = torch.tensor([[1, 1, 0]])
    big = torch.finfo(torch.float32).min
    # [B=1, heads=1, L=3, L=3]; the last key is padding (raw score in one, mask value in other).
    student = torch.tensor([[[[1.0, 2.0, 9.0], [0.0, -1.0, 4.0], [3.0, 3.0, 3.0]]]])
    teacher = torch.tensor([[[[0.0, 2.0, big], [1.0, 1.0, big], [3.0, 1.0, big]]]])
    # Differences on the 6 real entries: 1, 0, -1, -2, 0, 2 -> 10 / 9 entries.
    single = attention_score_mse([student], [teacher], mask)
    assert single.item() == pytest.approx(10 / 9, abs=1e-6)
    doubled = attention_score_mse([student, teacher], [teacher, teacher], mask)
    assert doubled.item() == pytest.approx(10 / 9, abs=1e-6)
    with pytest.raises(ValueError, match="heads"):
        attention_score_mse([student], [teacher.expand(1, 2, 3, 3)], mask)
    with pytest.raises(ValueError, match="layers"):
        attention_score_mse([student, student], [teacher], mask)


def test_hidden_mse_projects_each_pair_and_skips_padding():
    mask = torch.tensor([[1, 1, 0]])
    student = torch.tensor([[[1.0, 2.0], [0.0, -1.0], [50.0, 50.0]]])
    teacher = torch.tensor([[[1.0, 0.0, 3.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]])
    projections = nn.ModuleList([nn.Linear(2, 3), nn.Linear(2, 3)])
    weights = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with torch.no_grad():
        for layer, projection in enumerate(projections):
            projection.weight.copy_(torch.tensor(weights * (layer + 1)))
            projection.bias.fill_(0.5)

    expected = 0.0
    for layer in range(2):
        squares = []
        for position in range(2):  # position 2 is padding
            projected = (layer + 1) * weights @ student[0, position].numpy() + 0.5
            squares.extend((projected - teacher[0, position].numpy()) ** 2)
        expected += float(np.mean(squares))
    loss = hidden_mse([student, student], [teacher, teacher], projections, mask)
    assert loss.item() == pytest.approx(expected, abs=1e-5)

    shared = hidden_mse([student, student], [teacher, teacher], projections[:1], mask)
    first = hidden_mse([student], [teacher], projections[:1], mask)
    assert shared.item() == pytest.approx(2 * first.item(), rel=1e-6)
    with pytest.raises(ValueError, match="projection"):
        hidden_mse([student], [teacher], None, mask)
    with pytest.raises(ValueError, match="one per pair"):
        hidden_mse([student], [teacher], projections.extend([nn.Linear(2, 3)]), mask)


def loop_relation_kl(student_qkv, teacher_qkv, mask, heads):
    """MiniLM-v2 relations with explicit loops over the real tokens only."""
    total = 0.0
    for student, teacher in zip(student_qkv, teacher_qkv, strict=True):
        values = []
        for b in range(mask.shape[0]):
            real = [i for i in range(mask.shape[1]) if mask[b, i]]
            for h in range(heads):
                rows = []
                for states in (teacher, student):
                    d = states.shape[-1] // heads
                    x = states[b, real, h * d : (h + 1) * d].double().numpy()
                    rows.append([softmax(list(x[i] @ x.T / math.sqrt(d))) for i in range(len(x))])
                values.extend(kl(p, q) for p, q in zip(*rows, strict=True))
        total += sum(values) / len(values)
    return total


def test_relation_kl_matches_loops_and_ignores_padding():
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    student = [torch.randn(2, 4, 4, generator=generator) for _ in range(3)]
    teacher = [torch.randn(2, 4, 6, generator=generator) * 2 for _ in range(3)]
    loss = relation_kl(student, teacher, mask, relation_heads=2)
    assert loss.item() == pytest.approx(loop_relation_kl(student, teacher, mask, 2), abs=1e-5)
    assert relation_kl(teacher, teacher, mask, relation_heads=2).item() == pytest.approx(0.0)

    # [B, h, L, d] as AttentionCapture gives them: the same relations once heads are joined.
    split = [s.view(2, 4, 2, 2).transpose(1, 2) for s in student]
    assert relation_kl(split, teacher, mask, 2).item() == pytest.approx(loss.item(), abs=1e-6)
    garbage = [s.clone() for s in student]
    for s in garbage:
        s[1, 2:] = 100.0
    assert relation_kl(garbage, teacher, mask, 2).item() == pytest.approx(loss.item(), abs=1e-6)
    with pytest.raises(ValueError, match="relation_heads"):
        relation_kl(student, teacher, mask, relation_heads=3)
