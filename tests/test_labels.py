"""The one label table: what each corpus contributes to MELD's seven, the hard-case rules, full
coverage of every raw label in the real corpora, and the README's rendering of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import labels
from storage.labels import EMOTIONS, LabelRules, map_goemotions, map_label
from storage.status import Status
from tests.conftest import REPO, shared_data

# What each source contributes, per the Wang & Beigi table (GoEmotions through its Ekman groups).
CONTRIBUTES = {
    "crowdflower": {"anger", "joy", "neutral", "sadness", "surprise"},
    "saravia": {"anger", "fear", "joy", "sadness", "surprise"},
    "goemotions": set(EMOTIONS),
    "isear": {"anger", "disgust", "fear", "joy", "sadness"},
    "semeval_ei_reg": {"anger", "fear", "joy", "sadness"},
    "meld": set(EMOTIONS),
}
NO_COUNTERPART = {
    "crowdflower": {"worry", "love", "fun", "enthusiasm", "relief", "empty", "boredom"},
    "saravia": {"love"},
    "goemotions": set(),
    "isear": {"shame", "guilt"},
    "semeval_ei_reg": set(),
    "meld": set(),
}


@pytest.mark.parametrize("corpus", sorted(CONTRIBUTES))
def test_each_corpus_contributes_exactly_its_emotions(corpus):
    table = labels.CORPUS_LABELS[corpus]
    assert {t for t in table.values() if t is not None} == CONTRIBUTES[corpus]
    assert {raw for raw, t in table.items() if t is None} == NO_COUNTERPART[corpus]
    assert set(table.values()) <= set(EMOTIONS) | {None}


@pytest.mark.parametrize(
    "corpus, raw, label, status",
    [
        ("crowdflower", "happiness", "joy", Status.OK),
        ("crowdflower", "hate", "anger", Status.OK),
        ("crowdflower", "worry", None, Status.UNMAPPED_LABEL),
        ("saravia", "love", None, Status.UNMAPPED_LABEL),
        ("isear", "guilt", None, Status.UNMAPPED_LABEL),
        ("isear", "disgust", "disgust", Status.OK),
        ("goemotions", "curiosity", "surprise", Status.OK),
        ("semeval_ei_reg", "joy", "joy", Status.OK),
        ("crowdflower", "joy", None, Status.MALFORMED_ROW),  # Crowdflower says happiness, never joy
        ("saravia", "Anger", None, Status.MALFORMED_ROW),
    ],
)
def test_map_label(corpus, raw, label, status):
    mapped = map_label(corpus, raw)
    assert (mapped.label, mapped.status) == (label, status)
    assert bool(mapped.reason) == (status != Status.OK)


@pytest.mark.parametrize(
    "raws, rule, label, status",
    [
        (["joy"], "exclude", "joy", Status.OK),
        (["love", "gratitude"], "exclude", "joy", Status.OK),  # one Ekman group
        (["annoyance", "embarrassment"], "exclude", None, Status.AMBIGUOUS_LABEL),
        (["neutral", "fear"], "exclude", None, Status.AMBIGUOUS_LABEL),  # neutral is a group
        (["neutral", "fear"], "drop_neutral", "fear", Status.OK),
        (["neutral", "fear", "joy"], "drop_neutral", None, Status.AMBIGUOUS_LABEL),
        (["neutral"], "drop_neutral", "neutral", Status.OK),
        (["joy", "sarcasm"], "exclude", None, Status.MALFORMED_ROW),
        ([], "exclude", None, Status.UNLABELLED),
    ],
)
def test_goemotions_rows_resolve_through_the_ekman_groups(raws, rule, label, status):
    mapped = map_goemotions(raws, LabelRules(goemotions_multi_group=rule))
    assert (mapped.label, mapped.status) == (label, status)


@pytest.mark.realdata
def test_goemotions_groups_match_the_published_ekman_mapping():
    published = json.loads(shared_data("text", "goemotions", "ekman_mapping.json").read_text())
    ours = {g: sorted(raws) for g, raws in labels.GOEMOTIONS_EKMAN.items() if g != "neutral"}
    assert ours == {g: sorted(raws) for g, raws in published.items()}
    names = shared_data("text", "goemotions", "original", "labels.txt").read_text().split()
    assert tuple(names) == labels.GOEMOTIONS_LABELS


def _real_raw_labels(corpus: str) -> set[str]:
    """Raw labels as they stand in the real files, read here without the adapters."""
    import csv

    text = shared_data("text")
    if corpus == "crowdflower":
        with open(text / "crowdflower" / "text_emotion.csv", newline="", encoding="utf-8") as handle:
            return {row["sentiment"] for row in csv.DictReader(handle)}
    if corpus == "saravia":
        return {line.rsplit(";", 1)[1] for name in ("train", "val", "test")
                for line in (text / "dair_emotion" / f"{name}.txt").read_text().splitlines() if ";" in line}
    if corpus == "goemotions":
        names = (text / "goemotions" / "original" / "labels.txt").read_text().split()
        return {names[int(i)] for split in ("train", "dev", "test")
                for line in (text / "goemotions" / "original" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
                for i in line.split("\t")[1].split(",")}
    if corpus == "isear":
        lines = (text / "isear" / "isear.csv").read_text(encoding="utf-8").splitlines()
        column = lines[0].split("|").index("Field1")
        return {line.split("|")[column] for line in lines[1:]}
    return {line.split("\t")[2] for path in (text / "semeval2018_ei_reg").glob("*.txt")
            for line in path.read_text(encoding="utf-8").splitlines()[1:]}


@pytest.mark.realdata
@pytest.mark.parametrize("corpus", ["crowdflower", "saravia", "goemotions", "isear", "semeval_ei_reg"])
def test_the_table_covers_every_raw_label_of_every_real_source(corpus):
    seen = _real_raw_labels(corpus)
    assert len(seen) == {"crowdflower": 13, "saravia": 6, "goemotions": 28, "isear": 7, "semeval_ei_reg": 4}[corpus]
    assert labels.missing_entries(corpus, seen) == []
    # and each is either mapped or explicitly without a counterpart, nothing in between
    for raw in seen:
        assert labels.unified(corpus, raw) in (*EMOTIONS, None)


def test_an_unknown_raw_label_is_reported_missing():
    assert labels.missing_entries("saravia", ["joy", "nostalgia"]) == ["nostalgia"]
    with pytest.raises(labels.UnknownLabel, match="nostalgia"):
        labels.unified("saravia", "nostalgia")


def test_the_readme_shows_the_table_as_rendered():
    rendered = labels.label_table_markdown()
    readme = (REPO / "README.md").read_text()
    assert rendered in readme, "README.md's label table is out of date: paste storage.labels.label_table_markdown()"
    lines = rendered.splitlines()
    assert len(lines) == 2 + len(labels.CORPUS_LABELS)
    assert "`happiness`" in next(l for l in lines if l.startswith("| Crowdflower"))
