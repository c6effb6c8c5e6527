"""The training grid as Dagster assets on real MELD text: a MELD.Raw holding only (a part of) the
official CSVs from ../shared/data/meld, its text features, and text-only cells trained from the
store. Results in long form, predictions, checkpoints, the report and the CLI exports; training
loads no encoder; the same seed gives the same metrics twice."""

from __future__ import annotations

import csv
import json

import dagster as dg
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.definitions import build_definitions
from pipelines.runner import instance_for, run, targets
from storage import Store
from tests.conftest import shared_data

DIALOGUES = {"train": 120, "dev": 30}  # the first dialogues of each split: ~1.1k and ~0.3k utterances
CELL = "emotion.official.text.context_gru.s0"


def partial_meld(root, split: str, dialogues: int) -> None:
    """The official CSV of `split` cut to its first `dialogues` dialogues (a MELD.Raw of CSVs only)."""
    source = shared_data("meld", f"{split}_sent_emo.csv")
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    column = header.index("Dialogue_ID")
    kept = sorted({int(r[column]) for r in body})[:dialogues]
    with open(root / f"{split}_sent_emo.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(r for r in body if int(r[column]) in set(kept))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    meld = tmp / "MELD.Raw"
    meld.mkdir()
    for split, n in DIALOGUES.items():
        partial_meld(meld, split, n)
    config = tmp / "emostore.toml"
    config.write_text(f"""
[store]
root = "{tmp / 'store'}"
[corpora.meld]
root = "{meld}"
[training]
targets = ["emotion", "sentiment"]
modality_sets = [["text"]]
seeds = [0]
options = {{ epochs = 8, patience = 4, lr = 1e-3, batch_dialogues = 4 }}
[training.models.concat_mlp]
hidden = 64
[training.models.context_gru]
hidden = 64
""")
    from pipelines.settings import load_settings

    settings = load_settings(config)
    defs = build_definitions(settings)
    instance = instance_for(settings)
    features = run(defs, instance, targets(defs, [dg.AssetKey("meld_utterances"), dg.AssetKey("text_embeddings")]))
    assert all(ok for _, ok, _ in features), features
    return {"settings": settings, "defs": defs, "instance": instance, "store": Store(settings.store.root),
            "config": str(config)}


def train(bench, asset: str, partitions: list[str] | None = None):
    results = run(bench["defs"], bench["instance"], targets(bench["defs"], [dg.AssetKey(asset)], partitions))
    assert results and all(ok for _, ok, _ in results), results
    return results


def cli(bench, *args: str):
    result = CliRunner().invoke(app, ["--config", bench["config"], *args])
    return result


@pytest.mark.realdata
def test_text_only_cells_train_from_the_store_without_loading_an_encoder(bench, monkeypatch):
    import models.encoders.asr_backends as asr
    import models.encoders.face_embed as face_embed
    import models.encoders.sentence as sentence
    import models.encoders.speaker as speaker

    def no_encoder(*_, **__):
        raise AssertionError("training ran an encoder")

    monkeypatch.setattr(sentence.SentenceEncoder, "from_spec", classmethod(no_encoder))
    for module, name in ((speaker, "load_speaker"), (asr, "load_asr"), (face_embed, "load_embedder")):
        monkeypatch.setattr(module, name, no_encoder)
    train(bench, "train_emotion_official_text")
    train(bench, "train_sentiment_official_text")

    store = bench["store"]
    results = store.parquet("training_results").read()
    assert set(results["cell"]) == {f"{t}.official.text.{m}.s0" for t in ("emotion", "sentiment")
                                    for m in ("concat_mlp", "context_gru")}
    assert set(results["split"]) == {"train", "dev"}  # no test CSV: no test metrics, never faked
    dev = results.filter((pl.col("split") == "dev") & (pl.col("metric") == "weighted_f1"))
    assert dev.height == 4
    for row in dev.iter_rows(named=True):  # every cell beats always answering the commonest dev class
        labels = store.parquet("training_predictions").read(partition=row["cell"]).filter(pl.col("split") == "dev")["label"]
        majority = labels.value_counts(sort=True)["count"][0] / labels.len()
        assert row["value"] > 2 * majority / (1 + majority) * majority, row
    per_class = results.filter((pl.col("cell") == CELL) & (pl.col("metric") == "f1") & (pl.col("split") == "dev"))
    assert sorted(per_class["class"]) == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]

    cell = store.parquet("training_cells").read(partition=CELL).row(0, named=True)
    features = json.loads(cell["features"])
    text_spec = bench["settings"].encoders["text"].spec()
    assert features["text"]["table"] == "text_embeddings" and features["text"]["encoder"] == text_spec.encoder()
    assert json.loads(cell["params"]) == {"hidden": 64} and json.loads(cell["options"])["epochs"] == 8
    assert 1 <= cell["best_epoch"] <= cell["epochs_run"] <= 8
    confusion = json.loads(cell["confusion"])["dev"]
    utterances = json.loads(cell["counts"])["utterances"]["dev"]
    assert sum(map(sum, confusion)) == utterances > 200

    meta = {k: v.value for k, v in bench["instance"].get_latest_materialization_event(
        dg.AssetKey("train_emotion_official_text")).asset_materialization.metadata.items()}
    assert "data:image/png;base64," in meta["confusion (dev)"] and "data:image/png;base64," in meta["learning curve"]
    assert meta["test"].startswith("no labelled test split")


@pytest.mark.realdata
def test_predictions_checkpoints_report_and_exports(bench):
    from assets.training.report import predict_current
    from models.train import load_checkpoint
    from storage import media, uris

    store = bench["store"]
    if not store.parquet("training_cells").exists():
        train(bench, "train_emotion_official_text")
    stored = store.parquet("training_predictions").read(partition=CELL)
    dev_ids = set(stored.filter(pl.col("split") == "dev")["id"])
    cell = store.parquet("training_cells").read(partition=CELL).row(0, named=True)
    model, meta = load_checkpoint(media.read_media(uris.join(store.root, cell["checkpoint"])))
    assert meta["cell"] == CELL and meta["classes"] == cell["classes"]
    # the checkpoint on the current feature rows predicts what the cell stored
    again = predict_current(store, CELL)
    joined = stored.join(again, on="id", suffix="_now")
    assert joined.height == stored.height and (joined["predicted"] == joined["predicted_now"]).all()

    result = cli(bench, "predictions", CELL, "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "Dialogue_ID,Utterance_ID,Prediction" and len(lines) - 1 == len(dev_ids)
    assert cli(bench, "predictions", "emotion.official.text.nope.s0").exit_code == 2

    report = cli(bench, "report")
    assert report.exit_code == 0, report.output
    assert "concat_mlp wF1" in report.output and "context_gru wF1" in report.output
    table = json.loads(cli(bench, "report", "--format", "json").output)
    assert [r[:3] for r in table["rows"]][0] == ["emotion", "official", "Text"]
    assert cli(bench, "report", "--format", "markdown").output.startswith("| target |")
    assert cli(bench, "report", "--split", "test").exit_code == 1  # no test labels: nothing to show


@pytest.mark.realdata
def test_the_same_seed_gives_the_same_metrics_twice(bench):
    store = bench["store"]
    partition = ["concat_mlp|0"]
    train(bench, "train_emotion_official_text", partition)
    first = store.parquet("training_results").read(partition="emotion.official.text.concat_mlp.s0")
    train(bench, "train_emotion_official_text", partition)
    second = store.parquet("training_results").read(partition="emotion.official.text.concat_mlp.s0")
    assert first.equals(second)
    assert store.parquet("training_results").latest("emotion.official.text.concat_mlp.s0").version >= 2
