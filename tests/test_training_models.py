"""Smoke tests of every registered model and of the training loop, on synthetic batches and a
synthetic TrainingData (no store, no files): shapes, gradients, blindness to masked and padded
inputs, reproducibility, early stopping, the holdout and loss hooks, checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.fusion import IGNORE, MODELS, DialogueBatch, FusionConfig, FusionModel, build_model, config_fields, load_models
from models.train import (ClassificationLoss, TrainOptions, build_seeded, checkpoint_meta, collate, inverse_frequency,
                          load_checkpoint, metrics, predict, save_checkpoint, train)
from storage.dataset import FeatureSource, TrainingData

load_models()
NAMES = sorted(MODELS)
MODALITIES = {"text": 12, "face": 6}  # two modalities, so masking one leaves the other
N_CLASSES = 4
N_SPEAKERS = 5
LENGTHS = (5, 3, 1)  # one full dialogue, one padded, one of a single utterance


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and a second thread contending for a busy core slows
    a small GRU tenfold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_params(name: str) -> dict:
    """Small dims, and every optional part that takes a size switched on."""
    fields = config_fields(name)
    params = {"hidden": 16} if "hidden" in fields else {}
    if "speaker_embedding" in fields:
        params["speaker_embedding"] = 4
    if "layers" in fields:
        params["layers"] = 2
    return params


def tiny_model(name: str, seed: int = 0) -> FusionModel:
    torch.manual_seed(seed)
    return build_model(name, MODALITIES, N_CLASSES, N_SPEAKERS, tiny_params(name))


def synthetic_batch(seed: int = 0) -> DialogueBatch:
    """Every modality present somewhere and masked somewhere; speakers varied."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(LENGTHS), max(LENGTHS)
    valid = torch.arange(T)[None, :] < torch.tensor(LENGTHS)[:, None]
    present = {"text": valid.clone(), "face": valid.clone()}
    present["text"][0, 1] = False
    present["face"][0, 3] = present["face"][1, 0] = False
    target = torch.randint(0, N_CLASSES, (B, T), generator=g).masked_fill(~valid, IGNORE)
    speaker = torch.randint(1, N_SPEAKERS, (B, T), generator=g).masked_fill(~valid, 0)
    return DialogueBatch(
        features={m: torch.randn(B, T, d, generator=g) for m, d in MODALITIES.items()},
        present=present, valid=valid, speaker_id=speaker, target=target,
        index=torch.where(valid, torch.arange(B * T).view(B, T), -1),
    )


def model_loss(model: FusionModel, batch: DialogueBatch) -> torch.Tensor:
    loss_fn = ClassificationLoss(N_CLASSES)
    if hasattr(model, "training_loss"):
        return model.training_loss(batch, loss_fn)
    return loss_fn(model(batch), batch.target)


# -- models ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_and_finite(name):
    model = tiny_model(name).eval()
    batch = synthetic_batch()
    logits = model(batch)
    assert logits.shape == (*batch.valid.shape, N_CLASSES)
    assert torch.isfinite(logits[batch.valid]).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    model = tiny_model(name).train()
    model_loss(model, synthetic_batch()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: no gradient for {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_masked_and_padded_inputs_do_not_change_valid_outputs(name):
    model = tiny_model(name).eval()
    batch = synthetic_batch()
    with torch.no_grad():
        reference = model(batch)
    g = torch.Generator().manual_seed(1)
    noisy = dataclasses.replace(
        batch,
        features={m: torch.where((batch.present[m] & batch.valid)[..., None], x, 100 * torch.randn(x.shape, generator=g))
                  for m, x in batch.features.items()},
        present={m: p | (~batch.valid & (torch.rand(p.shape, generator=g) > 0.5)) for m, p in batch.present.items()},
        speaker_id=torch.where(batch.valid, batch.speaker_id, torch.randint(1, N_SPEAKERS, batch.valid.shape, generator=g)),
    )
    assert not torch.equal(noisy.features["text"], batch.features["text"])
    with torch.no_grad():
        perturbed = model(noisy)
    assert torch.equal(reference[batch.valid], perturbed[batch.valid])


@pytest.mark.parametrize("name", NAMES)
def test_build_model_rejects_unknown_params(name):
    with pytest.raises(KeyError, match=r"no parameter\(s\) \['not_a_field'\]"):
        build_model(name, MODALITIES, N_CLASSES, params={"not_a_field": 1})


@pytest.mark.parametrize("bidirectional", [False, True])
def test_causal_gru_sees_only_earlier_utterances(bidirectional):
    torch.manual_seed(0)
    model = build_model("context_gru", MODALITIES, N_CLASSES, N_SPEAKERS,
                        {"hidden": 16, "bidirectional": bidirectional}).eval()
    batch = synthetic_batch()
    later = dataclasses.replace(batch, features={m: x.clone() for m, x in batch.features.items()})
    later.features["text"][0, 4] += 1.0  # the last utterance of the full dialogue
    with torch.no_grad():
        before, after = model(batch)[0, :4], model(later)[0, :4]
    assert torch.equal(before, after) is (not bidirectional)


def test_mlp_works_with_one_modality():
    model = build_model("concat_mlp", {"text": 12}, N_CLASSES, params={"hidden": 8}).eval()
    batch = synthetic_batch()
    batch = dataclasses.replace(batch, features={"text": batch.features["text"]}, present={"text": batch.present["text"]})
    assert model(batch).shape == (*batch.valid.shape, N_CLASSES)


# -- loss, metrics, batches -----------------------------------------------------------------------
def test_loss_matches_torch_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, N_CLASSES, generator=g)
    target = torch.randint(0, N_CLASSES, (3, 5), generator=g)
    target[2, 3:] = IGNORE
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    flat = logits.reshape(-1, N_CLASSES), target.reshape(-1)
    assert torch.allclose(ClassificationLoss(N_CLASSES)(logits, target), F.cross_entropy(*flat, ignore_index=IGNORE))
    assert torch.allclose(ClassificationLoss(N_CLASSES, weight)(*flat),
                          F.cross_entropy(*flat, weight=weight, ignore_index=IGNORE))
    focal = ClassificationLoss(N_CLASSES, focal_gamma=2.0)(logits, target)
    assert focal < ClassificationLoss(N_CLASSES)(logits, target)  # (1 - p)^2 < 1 shrinks every term


def test_metrics_over_all_classes():
    m = metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), ("a", "b", "c", "d"))
    # F1: a 2/3 (p 1, r 1/2), b 2/3 (p 1/2, r 1), c 1, d absent: weighted by support 2, 1, 1, 0
    assert m["weighted_f1"] == pytest.approx(3 / 4)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["per_class_f1"] == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 1.0, "d": 0.0})
    assert m["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def synthetic_data(seed: int = 0, splits=(("train", 24), ("dev", 8)), noise: float = 1.5) -> TrainingData:
    """Dialogues of 2-6 utterances whose text vector carries the label under noise (face is
    noise, absent on a fifth of utterances); `splits` gives each split's dialogue count."""
    rng = np.random.default_rng(seed)
    centres = {m: rng.normal(size=(N_CLASSES, d)) for m, d in MODALITIES.items()}
    split, dialogue, labels, speaker = [], [], [], []
    for s, n in splits:
        for d in range(n):
            for _ in range(rng.integers(2, 7)):
                split.append(s), dialogue.append(f"{s}/dia{d}")
                labels.append(rng.integers(N_CLASSES)), speaker.append(rng.integers(1, N_SPEAKERS))
    labels = np.array(labels, np.int64)
    n = len(labels)
    features = {"text": (centres["text"][labels] + noise * rng.normal(size=(n, MODALITIES["text"]))).astype(np.float32),
                "face": rng.normal(size=(n, MODALITIES["face"])).astype(np.float32)}
    present = {"text": np.ones(n, bool), "face": rng.random(n) > 0.2}
    features["face"][~present["face"]] = 0.0
    return TrainingData(
        ids=np.array([f"{d}_utt{i}" for i, d in enumerate(dialogue)]), split=np.array(split),
        dialogue=np.array(dialogue), features=features, present=present, target="emotion",
        classes=tuple("abcd"), labels=labels, speaker=np.array([f"s{k}" for k in speaker]),
        speaker_id=np.array(speaker, np.int64),
        sources={m: FeatureSource(m, f"{m}_table", f"fp-{m}") for m in MODALITIES}, counts={})


def test_collate_pads_with_the_batch_conventions():
    data = synthetic_data()
    dialogues = data.dialogues("train")[:3]
    batch = collate(data, dialogues)
    T = max(len(d) for d in dialogues)
    assert batch.valid.shape == (3, T) and batch.lengths.tolist() == [len(d) for d in dialogues]
    pad = ~batch.valid
    assert (batch.index[pad] == -1).all() and (batch.target[pad] == IGNORE).all() and (batch.speaker_id[pad] == 0).all()
    for b, rows in enumerate(dialogues):
        assert batch.index[b, : len(rows)].tolist() == rows.tolist()
        assert torch.equal(batch.features["text"][b, : len(rows)], torch.from_numpy(data.features["text"][rows]))
        assert batch.present["face"][b, : len(rows)].tolist() == data.present["face"][rows].tolist()


# -- the loop -------------------------------------------------------------------------------------
FAST = TrainOptions(epochs=4, batch_dialogues=4, patience=4)


def scores(result) -> dict:
    return {"metrics": result.metrics, "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result.history],
            "best_epoch": result.best_epoch}


def test_same_seed_same_metrics_other_seed_differs():
    data = synthetic_data()
    runs = [train(build_seeded(data, "context_gru", {"hidden": 16}, seed=s), data, dataclasses.replace(FAST, seed=s))
            for s in (0, 0, 1)]
    assert scores(runs[0]) == scores(runs[1])
    assert np.array_equal(runs[0].predictions["dev"].probabilities, runs[1].predictions["dev"].probabilities)
    assert not np.array_equal(runs[0].predictions["dev"].probabilities, runs[2].predictions["dev"].probabilities)
    assert scores(runs[0])["history"] != scores(runs[2])["history"]


def test_early_stopping_restores_the_best_dev_epoch():
    data = synthetic_data(noise=3.0)
    snapshots, calls = {}, []
    model = build_seeded(data, "concat_mlp", {"hidden": 16})

    def progress(epoch, n_epochs, dev_f1, seconds, eta):
        calls.append((epoch, n_epochs, dev_f1))
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    options = TrainOptions(epochs=60, lr=3e-2, batch_dialogues=4, patience=3)
    result = train(model, data, options, progress=progress)
    assert result.epochs_run == result.best_epoch + options.patience < options.epochs  # it stopped early
    assert [c[0] for c in calls] == list(range(1, result.epochs_run + 1))
    f1s = [h["dev_weighted_f1"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(f1s))
    assert result.metrics["dev"]["weighted_f1"] == max(f1s)
    best, last = snapshots[result.best_epoch], snapshots[result.epochs_run]
    assert all(torch.equal(result.state_dict[k], best[k]) for k in best)
    assert not all(torch.equal(result.state_dict[k], last[k]) for k in last)
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())


def test_test_metrics_only_when_the_test_split_has_rows():
    without = train(build_seeded(synthetic_data(), "concat_mlp", {"hidden": 16}), synthetic_data(), FAST)
    assert set(without.metrics) == set(without.predictions) == {"train", "dev"}
    data = synthetic_data(splits=(("train", 24), ("dev", 8), ("test", 5)))
    with_test = train(build_seeded(data, "concat_mlp", {"hidden": 16}), data, FAST)
    assert set(with_test.metrics) == {"train", "dev", "test"}
    test_rows = np.flatnonzero(data.split == "test")
    assert np.array_equal(np.sort(with_test.predictions["test"].rows), test_rows)
    assert with_test.metrics["test"]["n"] == len(test_rows)


class HoldoutProbe(FusionModel):
    """Records the rows it trains on, the holdout batches it is given and its loss calls."""

    needs_holdout = True

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        self.linear = nn.Linear(sum(config.modalities.values()), config.n_classes)
        self.trained_rows: set[int] = set()
        self.holdout_calls: list[tuple[bool, list[int]]] = []
        self.loss_calls = 0

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """-> (B, T, C)"""
        if self.training:
            self.trained_rows |= set(batch.index[batch.valid].tolist())
        return self.linear(torch.cat(list(self.inputs(batch).values()), dim=-1))

    def training_loss(self, batch: DialogueBatch, loss_fn) -> torch.Tensor:
        self.loss_calls += 1
        return loss_fn(self(batch), batch.target)

    def fit_holdout(self, batches: list[DialogueBatch]) -> None:
        self.holdout_calls.append((self.training, [r for b in batches for r in b.index[b.valid].tolist()]))


def test_holdout_hook_gets_train_dialogues_the_model_never_trained_on():
    data = synthetic_data(splits=(("train", 30), ("dev", 8), ("test", 4)))
    model = HoldoutProbe(FusionConfig(modalities=data.modalities, n_classes=N_CLASSES))
    options = TrainOptions(epochs=2, batch_dialogues=4, holdout_fraction=0.2)
    train(model, data, options)
    assert len(model.holdout_calls) == 1
    in_training_mode, held = model.holdout_calls[0]
    assert not in_training_mode
    train_rows = set(np.flatnonzero(data.split == "train").tolist())
    assert set(held) <= train_rows and not set(held) & model.trained_rows
    assert set(held) | model.trained_rows == train_rows
    held_dialogues = set(data.dialogue[held])
    assert len(held_dialogues) == round(0.2 * 30)
    assert model.loss_calls == 2 * -(-24 // options.batch_dialogues)  # every step of both epochs used the hook


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_gives_identical_predictions(name, tmp_path):
    data = synthetic_data(splits=(("train", 8), ("dev", 4)))
    model = build_seeded(data, name, tiny_params(name))
    result = train(model, data, TrainOptions(epochs=1, batch_dialogues=4))
    blob = save_checkpoint(model, checkpoint_meta(data, result))
    path = tmp_path / "model.pt"
    path.write_bytes(blob)
    rows, probs = predict(model, data)
    for source in (blob, path):
        loaded, meta = load_checkpoint(source)
        assert type(loaded) is type(model) and repr(loaded.config) == repr(model.config)
        loaded_rows, loaded_probs = predict(loaded, data)
        assert np.array_equal(rows, loaded_rows) and np.array_equal(probs, loaded_probs)
    assert meta["classes"] == list(data.classes) and meta["modalities"] == data.modalities
    assert meta["features"]["text"]["fingerprint"] == "fp-text"
    assert meta["options"] == result.options and meta["metrics"] == result.metrics


def test_class_weights_and_option_checks():
    labels = np.array([0] * 8 + [1] * 2)  # class 2 absent
    full = inverse_frequency(labels, 3, power=1.0)
    assert torch.allclose(full, torch.tensor([10 / 24, 10 / 6, 10 / 3]))
    assert torch.allclose(inverse_frequency(labels, 3, power=0.5), full.sqrt())
    with pytest.raises(ValueError, match="holdout_fraction"):
        TrainOptions(holdout_fraction=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        TrainOptions(epochs=0)
