"""How often the demo's speaking faces have the right identity, by its `ground_truth.json`.

The demo MELD.Raw records, for every clip, who speaks and where each face is in each sampled
second; the demo's summary and its tests score `speaking_faces` against that. Production assets
never read the ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from storage import Status, Store

GROUND_TRUTH = "ground_truth.json"  # written by the demo corpus beside the MELD CSVs
MIN_IOU = 0.5  # a kept box overlapping a true face this much is that face


def identity_scores(store: Store, meld_root: Path) -> dict[str, dict[str, Any]] | None:
    """split -> `identity_accuracy` of the stored speaking faces; None without ground truth or
    speaking faces."""
    truth_file = Path(meld_root) / GROUND_TRUTH
    speaking = store.parquet("speaking_faces")
    if not truth_file.is_file() or not speaking.exists():
        return None
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    out = {}
    for split in speaking.partitions():
        utterances = store.parquet("meld_utterances").read(partition=split)
        detections = store.parquet("face_detections").read(partition=split)
        people = dict(utterances.select("id", "speakers").iter_rows())
        out[split] = identity_accuracy(speaking.read(partition=split), detections, people, truth)
    return out


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def identity_accuracy(speaking, detections, people: dict[str, list[str]], truth: dict[str, Any]) -> dict[str, Any]:
    """How often the kept faces are the speaker's, by the ground truth's boxes and identities.

    Counted over utterances that reached face matching (not those an upstream status stopped)
    whose speaker's face the truth shows in at least one sampled frame. A single-speaker
    utterance is right when it has status ok and every kept face overlaps (IoU >= 0.5) a true
    face of the speaker at that second; two-face clips are also counted on their own. A
    combined label ("Joey and Chandler") is right when the kept faces are one of the people it
    names (faces cannot tell which of them spoke).
    """
    boxes = {r["crop_id"]: (r["second"], r["box"]) for r in
             detections.filter(detections["status"] == "ok").select("crop_id", "second", "box").iter_rows(named=True)}
    matched = {str(Status.OK), str(Status.NO_FACE), str(Status.NO_SPEAKER_MATCH)}
    tally = {"single": [0, 0], "two_faces": [0, 0], "combined": [0, 0]}
    wrong: list[str] = []
    for row in speaking.iter_rows(named=True):
        clip = truth.get("clips", {}).get(row["id"])
        if clip is None or row["status"] not in matched:
            continue
        named = set(people.get(row["id"]) or []) if row["combined"] else {clip["speaker"]}
        true_faces = [f for f in clip["faces"] if f["identity"] in named]
        if not true_faces:
            continue
        hits = [
            next((f["identity"] for f in true_faces
                  if f["t"] == boxes[c][0] and iou(boxes[c][1], f["box"]) >= MIN_IOU), None)
            for c in row["crop_ids"] if c in boxes
        ]
        right = row["status"] == "ok" and bool(hits) and None not in hits and len(set(hits)) == 1
        kinds = ["combined"] if row["combined"] else ["single"] + (["two_faces"] if clip["two_faces"] else [])
        for kind in kinds:
            tally[kind][0] += right
            tally[kind][1] += 1
        if not right:
            wrong.append(f"{row['id']} ({row['status']}: {row['matched_speaker'] or row['reason']})")
    out: dict[str, Any] = {}
    for kind, (hits, total) in tally.items():
        out[f"{kind} right"] = hits
        out[f"{kind} total"] = total
        out[f"{kind} accuracy"] = round(hits / total, 4) if total else None
    out["wrong"] = wrong[:20]
    return out
