"""Hostile input and moved stores: no value in a file sizes memory or time (fuzzed, each example in
a subprocess under a 2 GB address-space limit and a 10 s guard), an emptied annotation CSV fails a
blocking check, a copied or moved store reads its own media and stays fresh, prune works on tagged
Lance versions, and sources never lead outside their corpus root."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import resource
import shutil
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests import fixtures_corpora as fixtures
from tests.test_object_store import s3_bucket  # noqa: F401  (the moto S3 server fixture)

ADDRESS_SPACE = 2 << 30  # bytes: RLIMIT_AS of every fuzzed example
GUARD_S = 10.0  # seconds an example may take
HEADER = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
          "Season", "Episode", "StartTime", "EndTime")
TRIED = {"meld csv": 0, "corpus names": 0}  # bad inputs fed, for the report

# A fork server that has imported the readers once: each example is a fresh child of it.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["assets.meld.utterances", "assets.corpora.items", "tests.test_hostile"])


def _limited(fn, args, sink) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    try:
        sink.send(("ok", fn(*args)))
    except BaseException as exc:  # reported to the parent, which fails the example
        sink.send(("error", f"{type(exc).__name__}: {str(exc)[:1500]}"))


def bounded(fn, *args):
    """`fn(*args)` in a child limited to ADDRESS_SPACE bytes and GUARD_S seconds; its result, or
    a test failure saying which limit it hit or what it raised."""
    receive, send = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_limited, args=(fn, args, send))
    started = time.monotonic()
    child.start()
    send.close()
    if not receive.poll(GUARD_S):
        child.kill()
        child.join()
        pytest.fail(f"{fn.__name__} ran past {GUARD_S:g} s (exit {child.exitcode})")
    try:
        outcome, value = receive.recv()
    except EOFError:
        child.join()
        pytest.fail(f"{fn.__name__} died (exit {child.exitcode}) after {time.monotonic() - started:.1f} s")
    child.join(GUARD_S)
    if outcome != "ok":
        pytest.fail(f"{fn.__name__} raised {value}")
    return value


@pytest.fixture(scope="module", autouse=True)
def fork_server():
    bounded(os.getpid)  # start the fork server (its imports take a few seconds) outside any guard
    yield


# -- the MELD CSV reader -----------------------------------------------------------------------
def ingest_meld(workdir: str, csv_text: str, clip_names: list[str]) -> dict:
    """Ingest one fuzzed train split; the facts the parent checks."""
    from assets.meld.utterances import Limits, ingest_split, to_arrow
    from storage.sources import control_characters

    root = Path(workdir)
    (root / "train_splits").mkdir(parents=True, exist_ok=True)
    (root / "train_sent_emo.csv").write_text(csv_text, encoding="utf-8", errors="surrogatepass")
    for name in clip_names:
        (root / "train_splits" / name).write_bytes(b"\0" * 64)
    ingest = ingest_split(str(root), "train", Limits(0.1, 30.0))
    table = to_arrow(ingest.rows)  # every value fits its column
    rows = table.to_pylist()
    return {
        "records": ingest.csv_records,
        "annotated": sum(r["csv_line"] is not None for r in rows),
        "rows": len(rows),
        "unique ids": len({r["id"] for r in rows}),
        "unexplained": [r["id"] for r in rows if r["status"] != "ok" and not r["reason"]],
        "control ids": [r["id"] for r in rows if control_characters(r["id"])],
        "notes": sum(len(n) for n in ingest.notes),
    }


NUMBERS = st.one_of(
    st.integers(-2**70, 2**70).map(str),
    st.sampled_from(["99999999999", "9" * 5000, "2147483647", "2147483648", "-1", "", " 7 ", "1e308",
                     "nan", "0x10", "\u0663", "1\n2", "3\x00", "4\x1b"]),
    st.text(max_size=12),
)
TIMES = st.one_of(st.sampled_from(["0:00:00,000", "99:59:59,999", "00:00:01,5", "00:00:00,000", "9" * 400]),
                  st.text(max_size=16))
TEXT = st.text(max_size=120)
RECORD = st.fixed_dictionaries({
    "Sr No.": NUMBERS, "Utterance": TEXT, "Speaker": TEXT, "Emotion": st.sampled_from(["joy", "anger", "", "x\n"]),
    "Sentiment": st.sampled_from(["positive", "negative", ""]), "Dialogue_ID": NUMBERS,
    "Utterance_ID": NUMBERS, "Season": NUMBERS, "Episode": NUMBERS, "StartTime": TIMES, "EndTime": TIMES,
})
FILE_NAME = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=40) \
    .filter(lambda n: not n.startswith(".") and len(n.encode()) < 200)
CLIP_NAMES = st.lists(st.one_of(
    st.builds(lambda d, u: f"dia{d}_utt{u}.mp4", st.integers(0, 10**30), st.integers(0, 10**30)),
    FILE_NAME.map(lambda n: n + ".mp4"),
), max_size=4, unique=True)


def _csv(records: list[dict], garbage: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for record in records:
        writer.writerow([record[c] for c in HEADER])
    return out.getvalue() + "".join(g + "\n" for g in garbage)


@settings(max_examples=25, deadline=15_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, max_size=6), garbage=st.lists(st.text(max_size=60), max_size=2), clips=CLIP_NAMES)
def test_fuzzed_meld_csv_and_clip_names_give_rows_with_statuses(tmp_path_factory, records, garbage, clips):
    TRIED["meld csv"] += 1
    workdir = tmp_path_factory.mktemp("fuzz-meld")
    facts = bounded(ingest_meld, str(workdir), _csv(records, garbage), clips)
    assert facts["annotated"] == facts["records"], facts  # every CSV record is a row
    assert facts["unique ids"] == facts["rows"], facts
    assert facts["unexplained"] == [] and facts["control ids"] == [], facts
    assert facts["notes"] < 20_000, "a note grew with the size of a number"


def test_a_huge_dialogue_id_is_a_malformed_row_not_an_exhausted_memory(tmp_path):
    """Found by a hostile trial: Dialogue_ID 99999999999 made the ingest build a set of every id
    in the range (OOM-killed at 24 GB). Ids far apart cost nothing; one past int32 is a status."""
    records = [dict(zip(HEADER, ["1", "Hi.", "Joey", "joy", "positive", "0", "0", "1", "1",
                                 "0:00:01,000", "0:00:02,000"])),
               dict(zip(HEADER, ["2", "Yo.", "Ross", "joy", "positive", "2000000000", "0", "1", "1",
                                 "0:00:01,000", "0:00:02,000"])),
               dict(zip(HEADER, ["3", "Hey.", "Rachel", "joy", "positive", "99999999999", "0", "1", "1",
                                 "0:00:01,000", "0:00:02,000"]))]
    facts = bounded(ingest_meld, str(tmp_path), _csv(records, []), ["dia99999999999_utt0.mp4"])
    assert facts["records"] == 3 and facts["annotated"] == 3 and facts["rows"] == 4

    from assets.meld.utterances import Limits, ingest_split

    ingest = ingest_split(str(tmp_path), "train", Limits(0.1, 30.0))
    by_id = {r["id"]: r for r in ingest.rows}
    assert by_id["train/dia2000000000_utt0"]["status"] == "missing_media"
    huge = by_id["train/csv_line4"]
    assert huge["status"] == "malformed_row" and "Dialogue_ID 99999999999 is outside 0..2147483647" in huge["reason"]
    assert by_id["train/dia99999999999_utt0"]["dialogue_id"] is None  # a clip name past int32: kept by name
    assert any("1-1999999999" in n for n in ingest.notes)


def test_control_characters_in_ids_are_refused_with_a_status(tmp_path):
    from assets.meld.utterances import Limits, ingest_split

    records = [dict(zip(HEADER, ["1", "Hi.", "Joey", "joy", "positive", "0\n1", "0", "1", "1",
                                 "0:00:01,000", "0:00:02,000"])),
               dict(zip(HEADER, ["2", "Hi.", "Jo\x1bey", "joy", "positive", "1", "0", "1", "1",
                                 "0:00:01,000", "0:00:02,000"]))]
    (tmp_path / "train_splits").mkdir()
    (tmp_path / "train_splits" / "dia5_utt0\n.mp4").write_bytes(b"")
    (tmp_path / "train_sent_emo.csv").write_text(_csv(records, []))
    rows = ingest_split(str(tmp_path), "train", Limits(0.1, 30.0)).rows
    assert all("\n" not in r["id"] and "\x1b" not in r["id"] for r in rows)
    by_line = {r["csv_line"]: r for r in rows if r["csv_line"]}
    assert by_line[3]["status"] == "malformed_row" and "control character" in by_line[3]["reason"]
    assert by_line[4]["status"] == "malformed_row" and "Speaker holds the control character \\x1b" in by_line[4]["reason"]
    clip = next(r for r in rows if r["csv_line"] is None)
    assert clip["status"] == "malformed_row" and "\\n" in clip["reason"]


# -- every corpus file-name parser -------------------------------------------------------------
TREES = {
    "cremad": fixtures.cremad_tree, "ravdess": fixtures.ravdess_tree, "savee": fixtures.savee_tree,
    "tess": fixtures.tess_tree, "emodb": fixtures.emodb_tree, "jaffe": fixtures.jaffe_tree,
    "ckplus": fixtures.ckplus_tree, "rafdb": fixtures.rafdb_tree, "fer2013": fixtures.fer2013_tree,
    "iemocap": fixtures.iemocap_tree,
}


@pytest.fixture(scope="module")
def corpus_trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    return {name: str(build(base / name)) for name, build in TREES.items()}


def read_fuzzed_corpus(corpus: str, tree: str, workdir: str, names: list[str], lines: list[str]) -> dict:
    """The corpus's fixture tree, plus a copy of one of its media files under each fuzzed name in
    every folder that holds media, plus fuzzed lines appended to its label files; then read."""
    from corpora import registry
    from storage.schemas.corpora import items_frame
    from storage.sources import control_characters

    root = Path(workdir) / corpus
    shutil.copytree(tree, root)
    media = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".wav", ".mp4", ".png", ".jpg", ".tiff")]
    folders = sorted({p.parent for p in media})[:4]
    added = 0
    for folder in folders:
        sample = next(p for p in media if p.parent == folder)
        for name in names:
            target = folder / f"{name}{sample.suffix}"
            if not target.exists():
                shutil.copy(sample, target)
                added += 1
    for label_file in [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".csv")][:4]:
        with open(label_file, "a", encoding="utf-8", errors="surrogatepass") as handle:
            handle.write("".join(line + "\n" for line in lines))
    rows = registry.get(corpus).read(root).rows
    frame = items_frame(rows)
    return {
        "rows": frame.height, "media": len(media), "added": added,
        "unique ids": frame["id"].n_unique(),
        "unexplained": frame.filter((pl.col("status") != "ok") & (pl.col("reason") == ""))["id"].to_list(),
        "control ids": [i for i in frame["id"] if control_characters(i)],
    }


NAME_PARTS = st.one_of(st.sampled_from(["99999999999", "9" * 300, "-1", "00", "S999", "train_99999999999",
                                        "1001_DFA_ANG_XX", "03-01-05-01-02-01-99", "Ses01F_impro01_F000"]),
                       st.integers(0, 10**25).map(str), FILE_NAME)
FUZZ_NAMES = st.lists(st.builds(lambda a, b: f"{a}{b}", NAME_PARTS, st.one_of(st.just(""), NAME_PARTS)),
                      min_size=1, max_size=3, unique=True).map(lambda names: [n[:120] for n in names])
FUZZ_LINES = st.lists(st.one_of(
    st.sampled_from(["train_99999999999.jpg 9", "[99999999999.0 - 1e308]\tSes01F_impro01_F000\tang\t[9, 9, 9]",
                     "1,99999999999 " * 3, "0," + " ".join(["255"] * 3000) + ",Training", "\x00\x1b"]),
    st.text(max_size=80)), max_size=3)


@pytest.mark.parametrize("corpus", sorted(TREES))
@settings(max_examples=4, deadline=15_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=FUZZ_NAMES, lines=FUZZ_LINES)
def test_fuzzed_corpus_names_and_lines_give_rows_with_statuses(tmp_path_factory, corpus_trees, corpus, names, lines):
    TRIED["corpus names"] += 1
    workdir = tmp_path_factory.mktemp(f"fuzz-{corpus}")
    facts = bounded(read_fuzzed_corpus, corpus, corpus_trees[corpus], str(workdir), names, lines)
    assert facts["unique ids"] == facts["rows"], facts
    assert facts["unexplained"] == [] and facts["control ids"] == [], facts


# -- sources stay inside their corpus ----------------------------------------------------------
def test_a_symlink_leading_out_of_the_corpus_is_a_status_row_and_never_read(tmp_path, monkeypatch):
    from corpora.cremad import read as read_cremad
    from assets.meld.utterances import Limits, ingest_split
    from storage import media

    secret = tmp_path / "outside" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(fixtures.tone_wav())
    opened = []
    real_sha = media.file_sha256
    monkeypatch.setattr(media, "file_sha256", lambda p, *a: opened.append(str(p)) or real_sha(p, *a))

    meld = tmp_path / "MELD.Raw"
    (meld / "train_splits").mkdir(parents=True)
    (meld / "train_splits" / "dia0_utt0.mp4").symlink_to(secret)
    (meld / "train_sent_emo.csv").write_text(_csv([dict(zip(HEADER, [
        "1", "Hi.", "Joey", "joy", "positive", "0", "0", "1", "1", "0:00:01,000", "0:00:02,000"]))], []))
    (meld / "dev_sent_emo.csv").symlink_to(tmp_path / "outside" / "secret.bin")
    row = ingest_split(str(meld), "train", Limits(0.1, 30.0)).rows[0]
    assert row["status"] == "outside_corpus" and "leads outside its corpus root" in row["reason"]
    assert row["clip_sha256"] is None and opened == []
    dev = ingest_split(str(meld), "dev", Limits(0.1, 30.0))
    assert dev.rows == [] and any("leads outside the corpus root" in n for n in dev.notes)

    cremad = fixtures.cremad_tree(tmp_path / "cremad")
    (cremad / "AudioWAV" / "1009_DFA_ANG_XX.wav").symlink_to(secret)
    rows = {r["id"]: r for r in read_cremad(cremad).rows}
    linked = next(r for r in rows.values() if r["path"].endswith("1009_DFA_ANG_XX.wav"))
    assert linked["status"] == "outside_corpus"
    assert sum(r["status"] == "ok" for r in rows.values()) == 6  # the others are read as before


# Each text corpus's main file, as the demo writes it (the file a symlink leads out of the root).
TEXT_CORPUS_FILES = {"crowdflower": "text_emotion.csv", "saravia": "train.txt", "goemotions": "original/train.tsv",
                     "isear": "isear.csv", "semeval_ei_reg": "2018-EI-reg-En-joy-train.txt"}


def _opened(monkeypatch) -> list[str]:
    """Every file opened through `open` from here on, by its real path."""
    import builtins

    opened, real_open = [], builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(os.path.realpath(f)) or real_open(f, *a, **k))
    return opened


def _items(corpus: str, root: Path, tmp_path: Path):
    """The items asset of `corpus` on `root`: (its rows, its readable check)."""
    from assets.corpora.items import ITEM_ASSETS
    from assets.resources import CorporaResource, LabelRulesResource, StoreResource, ThresholdsResource

    resources = {"store": StoreResource(root=str(tmp_path / "store")), "corpora": CorporaResource(roots={corpus: str(root)}),
                 "thresholds": ThresholdsResource(), "labels": LabelRulesResource()}
    result = dg.materialize([ITEM_ASSETS[corpus]], resources=resources, raise_on_error=False)
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "readable"]
    from storage import Store

    return Store(str(tmp_path / "store")).parquet(f"{corpus}_items").read().to_dicts(), check


@pytest.mark.parametrize("corpus", sorted(TEXT_CORPUS_FILES))
def test_a_text_corpus_file_leading_out_of_the_root_is_a_status_row_and_never_read(corpus, tmp_path, monkeypatch):
    from pipelines.demo import text_corpora

    text_corpora.write(tmp_path / "written", 0)
    root, name = tmp_path / "written" / corpus, TEXT_CORPUS_FILES[corpus]
    secret = tmp_path / "outside" / Path(name).name
    secret.parent.mkdir()
    (root / name).rename(secret)  # a well-formed file of the corpus, with a secret line, outside the root
    secret.write_text(secret.read_text() + "SECRET line outside the corpus;joy\n")
    (root / name).symlink_to(secret)
    opened = _opened(monkeypatch)
    rows, check = _items(corpus, root, tmp_path)
    outside = [r for r in rows if r["status"] == "outside_corpus"]
    assert [r["id"] for r in outside] == [name] and "leads outside its corpus root" in outside[0]["reason"]
    assert not any("SECRET" in (r["text"] or "") for r in rows)
    assert str(secret) not in opened
    assert not check.passed and name in check.metadata["problems"].value


def test_an_iemocap_label_file_leading_out_of_the_root_is_a_status_row_and_never_read(tmp_path, monkeypatch):
    root = fixtures.iemocap_tree(tmp_path / "iemocap")
    session = root / "IEMOCAP_full_release" / "Session3" / "dialog"
    secrets = {}
    for kind in ("EmoEvaluation", "transcriptions"):
        label_file = session / kind / "Ses03M_script01_1.txt"
        secrets[kind] = tmp_path / "outside" / kind / label_file.name
        secrets[kind].parent.mkdir(parents=True)
        label_file.rename(secrets[kind])
        label_file.symlink_to(secrets[kind])
    opened = _opened(monkeypatch)
    rows, check = _items("iemocap", root, tmp_path)
    by_id = {r["id"]: r for r in rows}
    refused = "IEMOCAP_full_release/Session3/dialog/{}/Ses03M_script01_1.txt"
    assert {by_id[refused.format(k)]["status"] for k in secrets} == {"outside_corpus"}
    # the session's turns were never evaluated from the outside file: their wavs have no annotation
    assert by_id["Ses03M_script01_1_M000"]["status"] == "no_annotation" and by_id["Ses03M_script01_1_M000"]["text"] is None
    assert by_id["Ses01F_impro01_F000"]["status"] == "ok"  # the other session is read as before
    assert not set(map(str, secrets.values())) & set(opened)
    assert not check.passed and "leading outside the corpus root" in check.metadata["problems"].value


def test_a_fer2013_csv_leading_out_of_the_root_is_a_status_row_and_its_pixels_are_never_read(tmp_path):
    from corpora.fer2013 import fer2013_images, read
    from corpora.reading import OutsideCorpus

    root = fixtures.fer2013_tree(tmp_path / "fer2013")
    secret = tmp_path / "outside.csv"
    (root / "fer2013" / "fer2013.csv").rename(secret)
    (root / "fer2013" / "fer2013.csv").symlink_to(secret)
    scan = read(root)
    assert [(r["id"], r["status"]) for r in scan.rows] == [("fer2013/fer2013.csv", "outside_corpus")]
    assert scan.outside == ["fer2013/fer2013.csv"] and scan.read == []
    assert fer2013_images(root, set()) == {}  # no usable item: nothing to open
    with pytest.raises(OutsideCorpus, match="fer2013.csv leads outside its corpus root"):
        fer2013_images(root, {"00000"})


def test_corpus_readers_open_files_only_through_the_confined_reading_path():
    """Every file a corpus module reads goes through `corpora.reading` (Scan.open_text, text,
    lines, files_under; open_confined), which confines it to the corpus root."""
    import ast

    calls = {"open", "read_text", "read_bytes", "fromfile", "load", "loadtxt", "read_csv"}
    found = []
    for path in sorted((Path(__file__).resolve().parent.parent / "corpora").glob("*.py")):
        if path.name == "reading.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in calls:
                    found.append(f"{path.name}:{node.lineno} {name}")
    assert found == []


# -- shrinking input ---------------------------------------------------------------------------
def _meld_csv(n: int) -> str:
    return _csv([dict(zip(HEADER, [str(i + 1), "Hi.", "Joey", "joy", "positive", str(i), "0", "1", "1",
                                   "0:00:01,000", "0:00:02,000"])) for i in range(n)], [])


def _check(instance, name: str):
    key = dg.AssetCheckKey(dg.AssetKey("meld_utterances"), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


def test_an_emptied_annotation_csv_fails_a_blocking_check_unless_accepted(tmp_path, settings_for, monkeypatch):
    """Found by a hostile trial: an empty train_sent_emo.csv turned every train row into
    no_annotation and every check passed."""
    from assets.shrink import ACCEPT_ENV
    from pipelines.runner import Target, instance_for, run
    from tests.test_clip_media import meld_definitions

    monkeypatch.delenv(ACCEPT_ENV, raising=False)
    corpus = tmp_path / "MELD.Raw"
    (corpus / "train_splits").mkdir(parents=True)
    (corpus / "train_sent_emo.csv").write_text(_meld_csv(10))
    settings = settings_for(f'[corpora.meld]\nroot = "{corpus}"\n')
    defs, instance = meld_definitions(settings), instance_for(settings)
    work = [Target(dg.AssetKey("meld_utterances"), "train")]
    assert [ok for _, ok, _ in run(defs, instance, work)] == [True]

    (corpus / "train_sent_emo.csv").write_text(_meld_csv(8))  # 20% lost: over the 10% allowed
    assert [ok for _, ok, _ in run(defs, instance, work)] == [False]
    shrunk = _check(instance, "annotated_rows_kept")
    assert not shrunk.passed
    assert shrunk.metadata["shrunk splits"].value == {"train": {"before": 10, "now": 8, "lost": 2, "share": 0.2}}

    (corpus / "train_sent_emo.csv").write_text("")  # emptied: compared with the last version (8)
    assert [ok for _, ok, _ in run(defs, instance, work)] == [False]
    assert "train: 8 -> 0 annotated rows" in _check(instance, "annotated_rows_kept").metadata["problems"].value

    monkeypatch.setenv(ACCEPT_ENV, "1")  # what --accept-shrink sets
    assert [ok for _, ok, _ in run(defs, instance, work)] == [True]
    assert _check(instance, "annotated_rows_kept").passed

    accepting = settings_for(f'[corpora.meld]\nroot = "{corpus}"\n[thresholds]\naccept_shrink = true\n')
    assert accepting.thresholds.accept_shrink is True


def test_an_empty_csv_beside_clips_fails_on_the_first_ingest_too(tmp_path, settings_for):
    from pipelines.runner import Target, instance_for, run
    from tests.test_clip_media import meld_definitions

    corpus = tmp_path / "MELD.Raw"
    (corpus / "train_splits").mkdir(parents=True)
    (corpus / "train_splits" / "dia0_utt0.mp4").write_bytes(b"")
    (corpus / "train_sent_emo.csv").write_text("")
    settings = settings_for(f'[corpora.meld]\nroot = "{corpus}"\n')
    defs, instance = meld_definitions(settings), instance_for(settings)
    assert [ok for _, ok, _ in run(defs, instance, [Target(dg.AssetKey("meld_utterances"), "train")])] == [False]
    assert "holds no record" in _check(instance, "no_annotated_row_lost").metadata["problems"].value


def test_a_corpus_items_table_that_shrinks_fails_its_check(tmp_path, monkeypatch):
    from assets.corpora.items import ITEM_ASSETS
    from assets.resources import CorporaResource, StoreResource, ThresholdsResource
    from assets.shrink import ACCEPT_ENV

    monkeypatch.delenv(ACCEPT_ENV, raising=False)
    root = tmp_path / "cremad"
    for name in ("1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1001_TIE_NEU_XX", "1002_DFA_SAD_LO",
                 "1002_IWW_FEA_MD", "1002_WSI_DIS_XX"):
        fixtures.put(root, f"AudioWAV/{name}.wav", fixtures.tone_wav())
    resources = {"store": StoreResource(root=str(tmp_path / "store")), "thresholds": ThresholdsResource(),
                 "corpora": CorporaResource(roots={"cremad": str(root)})}

    def materialize():
        result = dg.materialize([ITEM_ASSETS["cremad"]], resources=resources, raise_on_error=False)
        return result.success, {c.check_name: c for c in result.get_asset_check_evaluations()}

    assert materialize()[0]
    for wav in sorted((root / "AudioWAV").glob("1001_*.wav")):
        wav.unlink()  # 3 of the 6 items, and their labels, gone
    ok, checks = materialize()
    assert not ok and not checks["annotated_rows_kept"].passed
    assert checks["annotated_rows_kept"].metadata["shrunk splits"].value == {
        "train": {"before": 6, "now": 3, "lost": 3, "share": 0.5}}


# -- stores that move --------------------------------------------------------------------------
def test_a_moved_store_stays_fresh_and_reads_its_own_media_after_the_original_is_gone(tmp_path):
    """Found by a hostile trial: tables held absolute media locations, so a copied store read the
    original's files and broke when the original went."""
    from pipelines.runner import instance_for, run, states, targets
    from pipelines.settings import load_settings
    from storage import Store, media
    from tests.test_clip_media import media_corpus, meld_definitions

    corpus = tmp_path / "MELD.Raw"
    media_corpus(corpus)
    keys = [dg.AssetKey(k) for k in ("meld_utterances", "clip_audio", "clip_frames")]

    def open_at(where: Path):
        where.mkdir(parents=True, exist_ok=True)
        (where / "emostore.toml").write_text(f'[store]\nroot = "store"\n[corpora.meld]\nroot = "{corpus}"\n')
        settings = load_settings(where / "emostore.toml")
        return settings, meld_definitions(settings), instance_for(settings)

    settings, defs, instance = open_at(tmp_path / "first")
    train = [t for t in targets(defs, keys) if t.partition == "train"]
    assert all(ok for _, ok, _ in run(defs, instance, train))
    original = Store(settings.store.root)
    before = {k.to_user_string(): original.parquet(k.to_user_string()).read(partition="train") for k in keys}
    hashes = {name: original.parquet(name).latest("train").metadata["content_hash"] for name in before}

    shutil.copytree(tmp_path / "first", tmp_path / "moved")  # the store, its Dagster home, the config
    shutil.rmtree(tmp_path / "first")
    settings, defs, instance = open_at(tmp_path / "moved")
    moved = Store(settings.store.root)
    assert {(s.target.key.to_user_string(), s.state) for s in states(defs, instance, keys) if s.target.partition == "train"} \
        == {(k.to_user_string(), "fresh") for k in keys}
    for name, frame in before.items():
        assert moved.parquet(name).latest("train").metadata["content_hash"] == hashes[name]
    frames = moved.parquet("clip_frames").read(partition="train").filter(pl.col("frame_uri").is_not_null())
    audio = moved.parquet("clip_audio").read(partition="train").filter(pl.col("audio_uri").is_not_null())
    assert frames.height > 0 and audio.height > 0
    assert all(uri.startswith(moved.root + "/media/") for uri in [*frames["frame_uri"], *audio["audio_uri"]])
    assert media.load_image(frames["frame_uri"][0]).shape == (48, 64, 3)
    assert media.load_audio(audio["audio_uri"][0])[1] == 16_000
    stored = pl.read_parquet(moved.parquet("clip_frames").latest("train").uri)
    assert all(not uri.startswith("/") for uri in stored["frame_uri"].drop_nulls())  # relative on disk
    utterances = pl.read_parquet(moved.parquet("meld_utterances").latest("train").uri)
    assert "train_splits/dia0_utt0.mp4" in set(utterances["clip_uri"])  # relative to the corpus root

    # a second run on the moved store decodes nothing: its own media are found and reused
    assert all(ok for _, ok, _ in run(defs, instance, [t for t in train if t.key.to_user_string() == "clip_audio"]))
    meta = instance.get_latest_materialization_event(dg.AssetKey("clip_audio")).asset_materialization.metadata
    assert meta["computed"].value == 0


def test_the_gallery_fingerprint_carries_what_the_review_says_not_where_it_lies(tmp_path):
    from assets.resources import GalleryResource

    review = '[exclude]\ncrops = ["train/dia0_utt0/0/0"]\n'
    for place in ("a", "b"):
        (tmp_path / place).mkdir()
        (tmp_path / place / "store.face_review.toml").write_text(review)
    first = GalleryResource().for_store(str(tmp_path / "a" / "store"))
    second = GalleryResource().for_store(str(tmp_path / "b" / "store"))
    assert first.review_file != second.review_file
    assert first.fingerprint() == second.fingerprint()
    assert first.fingerprint_for("speaker_gallery") == second.fingerprint_for("speaker_gallery")
    (tmp_path / "b" / "store.face_review.toml").write_text(review.replace("utt0", "utt1"))
    assert first.fingerprint() != second.fingerprint()


def test_a_store_copied_to_s3_reads_the_same_and_reads_its_own_media(tmp_path, s3_bucket):
    from pyarrow import fs

    from storage import Store, media

    local = Store(str(tmp_path / "store"))
    uri = local.media("frames", "ab" * 8, ".jpg")
    media.write_media(uri, b"jpeg bytes")
    rows = [{"id": "train/dia0_utt0", "split": "train", "second": 0, "frame_uri": uri}]
    table = local.parquet("clip_frames")
    schema = table.schema.schema
    full = [{n: r.get(n) for n in schema.names} | {"status": "ok", "reason": "", "reused": False} for r in rows]
    written = table.write(full, partition="train")
    target = s3_bucket + "-copy"
    s3, base = fs.FileSystem.from_uri(target)
    fs.copy_files(str(tmp_path / "store"), base, source_filesystem=fs.LocalFileSystem(), destination_filesystem=s3)
    shutil.rmtree(tmp_path / "store")
    remote = Store(target).parquet("clip_frames")
    assert remote.latest("train").metadata["content_hash"] == written.metadata["content_hash"]
    frame_uri = remote.read(partition="train")["frame_uri"][0]
    assert frame_uri == f"{target}/media/frames/ab/{'ab' * 8}.jpg"
    assert media.read_media(frame_uri) == b"jpeg bytes"


# -- prune -------------------------------------------------------------------------------------
def _tagged_lance(root: str, commits: int):
    import numpy as np

    from storage import LanceTable
    from tests.test_storage import EMB

    table = LanceTable(root, EMB)
    for n in range(commits):  # every commit tagged, as the embedding assets tag theirs
        ids = [f"id{n}-{i}" for i in range(50)]
        table.upsert(pl.DataFrame({"key": ids, "id": ids, "speaker": ["s"] * 50, "vector": pl.Series(
            np.full((50, 4), n, np.float32), dtype=pl.Array(pl.Float32, 4))}), tag=f"speaker_embeddings train fp{n}")
    return table


def test_prune_removes_tagged_commits_and_keeps_what_is_named(tmp_path):
    """Found by a hostile trial: every Lance commit is tagged, and prune crashed on them."""
    import datetime

    table = _tagged_lance(str(tmp_path), 6)
    rows = {v["version"]: v["rows"] for v in table.versions()}
    versions = sorted(rows)
    assert all(v["tags"] for v in table.versions() if v["rows"])  # every commit of rows is tagged
    user, current = versions[3], versions[4]
    table.table().tags.create("paper-run", user)
    done = table.prune([current], older_than=datetime.timedelta(0))
    kept = {user, current, versions[-1]}
    assert sorted(done.versions) == sorted(set(versions) - kept) and done.bytes_removed > 0
    assert {v["version"] for v in table.versions()} == kept
    for version in kept:  # time travel to every kept version still works
        frame = table.read(version=version, columns=["key"])
        assert frame.height == rows[version] and frame["key"].n_unique() == frame.height
    assert table.read(version="paper-run", columns=["key"]).height == rows[user]
    assert table.count() == 300
    with pytest.raises(Exception):
        table.read(version=versions[2])


def test_emostore_prune_goes_through_every_table_and_reports_what_it_freed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from storage import ParquetTable
    from storage.schemas import _REGISTRY
    from tests.test_storage import EMB, FLAT

    (tmp_path / "emostore.toml").write_text('[store]\nroot = "store"\n')
    store = str(tmp_path / "store")
    for schema in (EMB, FLAT):
        monkeypatch.setitem(_REGISTRY, schema.name, schema)
    _tagged_lance(store, 4)
    flat = ParquetTable(store, FLAT)
    for n in range(5):
        flat.write(pl.DataFrame({"id": [f"x{n}"], "value": [float(n)]}))
    (tmp_path / "store" / "tables" / FLAT.name / ".tmp-999999999-ab.parquet").write_bytes(b"PAR1")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "emostore.toml"), "prune", "--keep", "2",
                                      "--lance-days", "0"])
    assert result.exit_code == 0, result.output
    assert "test_embeddings: removed 5 old versions, freed" in result.output  # the two empty ones too
    assert "test_flat: removed 3 old versions, freed" in result.output
    assert "removed 8 old versions, freed" in result.output
    assert [v.version for v in flat.versions()] == [4, 5] and flat.read().to_dicts() == [{"id": "x4", "value": 4.0}]
    assert not list((tmp_path / "store" / "tables" / FLAT.name).glob(".tmp-*"))


def test_accept_shrink_is_an_option_of_materialize_and_update(monkeypatch):
    from typer.testing import CliRunner

    from assets.shrink import ACCEPT_ENV
    from pipelines import cli

    for command in ("materialize", "update"):
        assert "--accept-shrink" in CliRunner().invoke(cli.app, [command, "--help"]).output
    monkeypatch.delenv(ACCEPT_ENV, raising=False)
    cli._accept_shrink(False)
    assert ACCEPT_ENV not in os.environ
    cli._accept_shrink(True)
    assert os.environ[ACCEPT_ENV] == "1"
    monkeypatch.delenv(ACCEPT_ENV)
