"""`emostore demo-corpus DIR --clips N`: the scripted demo (its quirks once) plus ordinary
dialogues up to N clip files, without moving any scripted clip's draws."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pipelines.demo import meld


def test_a_corpus_of_n_clips_is_the_demo_plus_ordinary_dialogues(tmp_path):
    demo = meld.plan_clips(tmp_path, 0)
    script = meld.script_for(400, 0)
    jobs = meld.plan_clips(tmp_path, 0, script)
    assert len(jobs) == 400 and meld.scripted_clip_count() == len(demo)
    assert all(jobs[key] == job for key, job in demo.items())  # every scripted clip as in the demo
    extra = [jobs[k] for k in jobs if k not in demo]
    assert all(not j.line.quirk and j.line.annotated and j.line.media == "clip" and j.line.track == "speech"
               and not j.line.says for j in extra)
    splits = Counter(k.split("/")[0] for k in jobs if k not in demo)
    assert splits["train"] > splits["test"] > 0 and splits["dev"] > 0
    quirks = Counter(line.quirk for d in script for line in d.lines if line.quirk)
    assert quirks == Counter(line.quirk for d in meld.SCRIPT for line in d.lines if line.quirk)
    ids = [(d.split, d.id) for d in script]
    assert len(ids) == len(set(ids))  # no dialogue id used twice in a split
    assert meld.script_for(400, 0) == script and meld.script_for(400, 1) != script


def test_the_csvs_hold_every_ordinary_clip_once(tmp_path):
    script = meld.script_for(120, 0)
    jobs = meld.plan_clips(tmp_path, 0, script)
    meld.write_csvs(tmp_path, {key: {"duration": 2.0} for key in jobs}, 0, script)
    rows = set()
    for split, name in meld.CSV_NAMES.items():
        with (tmp_path / name).open(encoding="utf-8", newline="") as handle:
            rows |= {f"{split}/dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}" for r in csv.DictReader(handle)}
    ordinary = {k for k in jobs if int(k.split("dia")[1].split("_")[0]) >= meld.ORDINARY_FIRST_DIALOGUE}
    assert ordinary and ordinary <= rows


def test_fewer_clips_than_the_script_is_refused():
    with pytest.raises(ValueError, match="at least"):
        meld.script_for(meld.scripted_clip_count() - 1, 0)
    assert meld.script_for(None, 0) is meld.SCRIPT


def test_the_cli_refuses_too_few_clips(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(tmp_path / "c"), "--clips", "10"],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "at least" in out.stderr
    assert not (tmp_path / "c").exists()
