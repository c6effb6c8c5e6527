"""The KAN, Mamba, cross-modal attention and late-fusion models: shapes, gradients, blindness to
masked inputs and padding, and their numerical pieces against references (scipy's B-splines, the
step-by-step SSM recurrence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.interpolate import BSpline

import models.attention  # noqa: F401  (registers attention, attention_context)
import models.kan as kan
import models.late_fusion as late_fusion
import models.mamba as mamba
from models.fusion import IGNORE, MODELS, DialogueBatch

N_CLASSES = 4
ONE_MODALITY = {"text": 6}
THREE_MODALITIES = {"text": 6, "speaker": 5, "face": 3}
LENGTHS = [5, 2, 4]  # dialogues of a batch, padded to 5
SMALL = {"hidden": 16, "dropout": 0.1}
MODEL_SPECS = [
    ("kan_mlp", {}),
    ("mamba", {"d_state": 4, "expand": 2, "layers": 2}),
    ("mamba", {"d_state": 4, "expand": 2, "layers": 2, "bidirectional": True}),
    ("attention", {"heads": 4}),
    ("attention_context", {"heads": 4}),
    ("late_fusion", {}),
]
SPEC_IDS = [name + ("_bidirectional" if params.get("bidirectional") else "") for name, params in MODEL_SPECS]


def build(name: str, modalities: dict[str, int], params: dict, seed: int = 0):
    torch.manual_seed(seed)
    entry = MODELS[name]
    return entry.build(entry.config(modalities=dict(modalities), n_classes=N_CLASSES, **{**SMALL, **params}))


def make_batch(modalities: dict[str, int], lengths: list[int], seed: int = 0) -> DialogueBatch:
    """Random dialogues; each modality present at ~70% of utterances, every utterance has one."""
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    valid = torch.arange(t)[None] < torch.tensor(lengths)[:, None]
    present = {m: torch.rand(b, t, generator=g) < 0.7 for m in modalities}
    first = next(iter(modalities))
    present[first] = present[first] | ~torch.stack(list(present.values())).any(0)
    return DialogueBatch(
        features={m: torch.randn(b, t, d, generator=g) for m, d in modalities.items()},
        present=present,
        valid=valid,
        speaker_id=torch.where(valid, torch.randint(1, 4, (b, t), generator=g), 0),
        target=torch.where(valid, torch.randint(0, N_CLASSES, (b, t), generator=g), IGNORE),
        index=torch.where(valid, torch.arange(b * t).view(b, t), -1),
    )


def one_dialogue(batch: DialogueBatch, i: int) -> DialogueBatch:
    """Dialogue i of the batch alone, without padding."""
    n = int(batch.lengths[i])
    return DialogueBatch(
        features={m: x[i:i + 1, :n] for m, x in batch.features.items()},
        present={m: p[i:i + 1, :n] for m, p in batch.present.items()},
        **{f.name: getattr(batch, f.name)[i:i + 1, :n] for f in dataclasses.fields(batch)
           if f.name not in ("features", "present")})


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)


def training_loss(model, batch: DialogueBatch) -> torch.Tensor:
    if hasattr(model, "training_loss"):
        return model.training_loss(batch, loss_fn)
    return loss_fn(model(batch), batch.target)


# -- every model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("modalities", [ONE_MODALITY, THREE_MODALITIES], ids=["one", "three"])
@pytest.mark.parametrize("name,params", MODEL_SPECS, ids=SPEC_IDS)
def test_shape_finite_and_every_parameter_learns(name, params, modalities):
    model = build(name, modalities, params)
    batch = make_batch(modalities, LENGTHS)
    model.eval()
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (len(LENGTHS), max(LENGTHS), N_CLASSES)
    assert torch.isfinite(logits).all()

    model.train()
    training_loss(model, batch).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("modalities", [ONE_MODALITY, THREE_MODALITIES], ids=["one", "three"])
@pytest.mark.parametrize("name,params", MODEL_SPECS, ids=SPEC_IDS)
def test_masked_and_padded_inputs_do_not_reach_valid_outputs(name, params, modalities):
    model = build(name, modalities, params).eval()
    batch = make_batch(modalities, LENGTHS)
    g = torch.Generator().manual_seed(1)
    scrambled = dataclasses.replace(
        batch,
        features={m: torch.where((batch.present[m] & batch.valid).unsqueeze(-1), x,
                                 100 * torch.randn(x.shape, generator=g))
                  for m, x in batch.features.items()},
        # presence bits on padding mean nothing either
        present={m: torch.where(batch.valid, p, torch.rand(p.shape, generator=g) < 0.5)
                 for m, p in batch.present.items()},
    )
    assert any(not torch.equal(a, b) for a, b in zip(batch.features.values(), scrambled.features.values()))
    with torch.no_grad():
        before, after = model(batch), model(scrambled)
    assert torch.equal(before[batch.valid], after[batch.valid])


@pytest.mark.parametrize("modalities", [ONE_MODALITY, THREE_MODALITIES], ids=["one", "three"])
@pytest.mark.parametrize("name,params", MODEL_SPECS, ids=SPEC_IDS)
def test_a_dialogue_reads_the_same_alone_and_padded_in_a_batch(name, params, modalities):
    """Padding at the end of shorter dialogues never changes their outputs (causal conv and scan,
    reversal within lengths, packed GRU)."""
    model = build(name, modalities, params).eval()
    batch = make_batch(modalities, LENGTHS)
    with torch.no_grad():
        together = model(batch)
        for i, n in enumerate(LENGTHS):
            alone = model(one_dialogue(batch, i))
            torch.testing.assert_close(alone[0], together[i, :n], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,params,sees_later", [
    ("kan_mlp", {}, False),
    ("mamba", {"d_state": 4}, False),
    ("mamba", {"d_state": 4, "bidirectional": True}, True),
    ("attention", {}, False),
    ("attention_context", {}, True),
    ("late_fusion", {}, False),
], ids=["kan_mlp", "mamba", "mamba_bidirectional", "attention", "attention_context", "late_fusion"])
def test_only_dialogue_models_read_later_utterances(name, params, sees_later):
    model = build(name, THREE_MODALITIES, params).eval()
    batch = make_batch(THREE_MODALITIES, LENGTHS)
    later = dataclasses.replace(batch, features={m: x.clone() for m, x in batch.features.items()})
    later.features["text"][0, 4] += 1.0  # the last utterance of the first dialogue
    later.present["text"][0, 4] = True
    with torch.no_grad():
        before, after = model(batch)[0, :4], model(later)[0, :4]
    assert torch.equal(before, after) is (not sees_later)


@pytest.mark.parametrize("name,params", MODEL_SPECS, ids=SPEC_IDS)
def test_an_utterance_without_any_modality_stays_finite(name, params):
    model = build(name, THREE_MODALITIES, params)
    batch = make_batch(THREE_MODALITIES, LENGTHS)
    for p in batch.present.values():
        p[0, 1] = False
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()
    model.train()
    training_loss(model, batch).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_registered_names_and_defaults():
    assert MODELS["kan_mlp"].config is kan.KANConfig
    assert MODELS["mamba"].config is mamba.MambaConfig
    assert MODELS["late_fusion"].build is late_fusion.LateFusion
    assert MODELS["attention"].build is MODELS["attention_context"].build
    assert not build("attention", ONE_MODALITY, {}).config.context
    context_model = build("attention_context", ONE_MODALITY, {})
    assert context_model.config.context and context_model.context is not None
    assert not build("attention_context", ONE_MODALITY, {"context": False}).config.context


# -- KAN: B-splines -------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_b_spline_basis_equals_scipy_on_the_uniform_grid(order):
    grid = kan.uniform_grid(grid_size=5, order=order)
    x = torch.rand(3, 100, generator=torch.Generator().manual_seed(order), dtype=torch.float64) * 2 - 1
    ours = kan.b_spline_basis(x, grid, order)
    assert ours.shape == (3, 100, 5 + order)
    theirs = BSpline.design_matrix(x.flatten().numpy(), grid.numpy(), order).toarray()
    np.testing.assert_allclose(ours.reshape(-1, 5 + order).numpy(), theirs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.sum(-1).numpy(), 1.0, atol=1e-12)


def test_b_spline_basis_equals_scipy_on_uneven_knots():
    rng = np.random.default_rng(0)
    grid = np.sort(rng.uniform(-2, 2, 12))
    order = 3
    x = rng.uniform(grid[order], grid[-order - 1], 200)
    ours = kan.b_spline_basis(torch.from_numpy(x), torch.from_numpy(grid), order).numpy()
    np.testing.assert_allclose(ours, BSpline.design_matrix(x, grid, order).toarray(), rtol=0, atol=1e-10)


def test_kan_layer_is_base_plus_spline_edges():
    """One output of a KAN layer is the sum over inputs of w_base silu(x) + w_spline sum_k c_k B_k(x)."""
    torch.manual_seed(0)
    layer = kan.KANLayer(3, 2, grid_size=4, order=3).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    squashed = torch.tanh(layer.norm(x))
    basis = kan.b_spline_basis(squashed, layer.grid, 3)
    expected = torch.zeros(7, 2, dtype=torch.float64)
    for o in range(2):
        for i in range(3):
            spline = basis[:, i] @ layer.spline_coef[o, i]
            expected[:, o] += layer.base_weight[o, i] * F.silu(squashed[:, i]) + layer.spline_weight[o, i] * spline
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


# -- Mamba: the selective scan --------------------------------------------------------------------
def scan_inputs(batch=2, dim=3, n=4, length=13, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return dict(u=randn(batch, dim, length), delta=F.softplus(randn(batch, dim, length)),
                A=-torch.exp(randn(dim, n)), B=randn(batch, n, length), C=randn(batch, n, length)), randn


@pytest.mark.parametrize("length", [1, 2, 13, 32])
@pytest.mark.parametrize("with_D", [False, True], ids=["noD", "D"])
@pytest.mark.parametrize("with_z", [False, True], ids=["noz", "z"])
def test_reference_scan_equals_the_step_by_step_recurrence(length, with_D, with_z):
    args, randn = scan_inputs(length=length)
    args["D"] = randn(3) if with_D else None
    args["z"] = randn(2, 3, length) if with_z else None
    ref = mamba.selective_scan_ref(**args)
    assert ref.dtype == torch.float64 and ref.shape == (2, 3, length)
    torch.testing.assert_close(ref, mamba.selective_scan_naive(**args), rtol=0, atol=1e-10)


def test_reference_scan_applies_delta_bias_and_softplus():
    args, randn = scan_inputs()
    raw, bias, skip = randn(2, 3, 13), randn(3), randn(3)
    ref = mamba.selective_scan_ref(**{**args, "delta": raw}, D=skip, delta_bias=bias, delta_softplus=True)
    naive = mamba.selective_scan_naive(**{**args, "delta": F.softplus(raw + bias[:, None])}, D=skip)
    torch.testing.assert_close(ref, naive, rtol=0, atol=1e-10)


def test_cpu_tensors_never_reach_the_cuda_kernel(monkeypatch):
    def kernel(*args, **kwargs):
        raise AssertionError("the CUDA kernel was called on CPU tensors")

    monkeypatch.setattr(mamba, "selective_scan_fn", kernel)
    args, randn = scan_inputs()
    args = {k: v.float() for k, v in args.items()}
    out = mamba.selective_scan(**args, D=None, z=None, delta_bias=None, delta_softplus=False)
    torch.testing.assert_close(out, mamba.selective_scan_ref(**args))


def test_reverse_within_lengths_keeps_padding_in_place():
    index = mamba.reverse_within_lengths(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]


# -- late fusion ----------------------------------------------------------------------------------
def signal_and_noise_batch(n_dialogues: int, seed: int) -> DialogueBatch:
    """'signal' is the label, one-hot and slightly noisy; 'noise' is unrelated to it."""
    g = torch.Generator().manual_seed(seed)
    lengths = [6] * n_dialogues
    batch = make_batch({"signal": 6, "noise": 6}, lengths, seed=seed)
    label = torch.randint(0, N_CLASSES, (n_dialogues, 6), generator=g)
    signal = 3 * F.one_hot(label, 6).float() + 0.3 * torch.randn(n_dialogues, 6, 6, generator=g)
    return dataclasses.replace(
        batch, target=label,
        features={"signal": signal, "noise": torch.randn(n_dialogues, 6, 6, generator=g)},
        present={"signal": torch.ones(n_dialogues, 6, dtype=torch.bool),
                 "noise": torch.ones(n_dialogues, 6, dtype=torch.bool)})


def test_late_fusion_weights_start_uniform_and_are_saved():
    model = build("late_fusion", THREE_MODALITIES, {})
    assert model.needs_holdout
    torch.testing.assert_close(model.modality_weights, torch.full((3,), 1 / 3))
    assert "modality_weights" in model.state_dict()


def test_late_fusion_outputs_the_log_of_the_renormalised_weighted_average():
    model = build("late_fusion", THREE_MODALITIES, {}).eval()
    model.modality_weights.copy_(torch.tensor([0.5, 0.3, 0.2]))
    batch = make_batch(THREE_MODALITIES, LENGTHS)
    with torch.no_grad():
        probs = model.modality_logits(batch).softmax(-1)  # (B, T, M, C)
        w = torch.tensor([0.5, 0.3, 0.2]) * model.presence(batch)
        expected = ((w / w.sum(-1, keepdim=True)).unsqueeze(-1) * probs).sum(2).log()
        out = model(batch)
    torch.testing.assert_close(out[batch.valid], expected[batch.valid])
    torch.testing.assert_close(out.exp().sum(-1)[batch.valid], torch.ones(int(batch.valid.sum())))


def test_late_fusion_loss_is_the_mean_of_each_heads_loss_where_it_is_present():
    model = build("late_fusion", THREE_MODALITIES, {}).eval()
    batch = make_batch(THREE_MODALITIES, LENGTHS)
    batch.present["face"][:] = False  # absent from the whole batch: left out, not NaN
    logits = model.modality_logits(batch)
    has = {m: batch.present[m] & batch.valid for m in THREE_MODALITIES}
    expected = torch.stack([F.cross_entropy(logits[:, :, i][has[m]], batch.target[has[m]])
                            for i, m in enumerate(["text", "speaker"])]).mean()
    torch.testing.assert_close(model.training_loss(batch, loss_fn), expected)


def test_fit_holdout_moves_the_weight_to_the_informative_modality():
    model = build("late_fusion", {"signal": 6, "noise": 6}, {"dropout": 0.0})
    train = signal_and_noise_batch(8, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):  # the noise head memorises its training data; the signal head learns the rule
        optimizer.zero_grad()
        model.training_loss(train, loss_fn).backward()
        optimizer.step()
    heads = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("heads.")}

    model.fit_holdout([signal_and_noise_batch(4, seed=1), signal_and_noise_batch(4, seed=2)])
    weights = model.modality_weights
    assert weights.min() >= 0 and abs(float(weights.sum()) - 1) < 1e-6
    assert weights[0] > 0.9, weights
    assert torch.equal(model.state_dict()["modality_weights"], weights)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in heads.items())
    assert model.training  # fit_holdout leaves the mode as it found it


def test_fit_modality_weights_renormalises_over_present_modalities():
    """A modality present at half the utterances and right there beats one present everywhere and
    wrong: utterances without it do not count against it."""
    n = 200
    target = torch.arange(n) % N_CLASSES
    right = 5.0 * F.one_hot(target, N_CLASSES).double()
    wrong = 5.0 * F.one_hot((target + 1) % N_CLASSES, N_CLASSES).double()
    log_probs = torch.stack([right, wrong], dim=1).log_softmax(-1)
    present = torch.stack([torch.arange(n) % 2 == 0, torch.ones(n, dtype=torch.bool)], dim=1)
    weights = late_fusion.fit_modality_weights(log_probs, present, target)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert weights[0] > 0.9, weights
