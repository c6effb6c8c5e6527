"""`meld_utterances`: one row per MELD CSV utterance, plus one per clip that has no CSV row.

Every row gets the official fields, the id `{split}/dia{D}_utt{U}`, the spoken text, parsed times,
its clip with the facts probed from the container header, and a status. A row can meet several
problems at once; all are listed in `issues`, and `status` is the first of them in `PRECEDENCE`
(a clip that cannot be read outranks what its timestamps say). Quirks that are repaired rather
than fatal (mojibake, stage directions, one-digit hours, ...) are listed in `quirks`.
"""


import collections
import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets import shrink
from assets.meld import annotations as ann
from assets.meld.layout import CLIP_DIRS, CSV_NAMES, SplitLayout, clip_files, find_split
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import CorporaResource, StoreResource, ThresholdsResource
from storage import Status, content_hash, media, sources
from storage import shards as sharding
from storage.shards import Shard
from storage.schemas.meld import MELD_UTTERANCES

INGEST_VERSION = "1"  # bump when what the ingest writes changes
PROBE_WORKERS = 4  # probing and hashing wait on the disk more than on the CPU

PRECEDENCE = (
    Status.MALFORMED_ROW, Status.DUPLICATE, Status.NO_ANNOTATION, Status.OUTSIDE_CORPUS, Status.MISSING_MEDIA,
    Status.CORRUPT_MEDIA, Status.BAD_TIMESTAMP, Status.ZERO_DURATION, Status.TOO_SHORT,
    Status.TOO_LONG,
)
_CLIP_NAME = re.compile(r"dia(\d+)_utt(\d+)\.mp4$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Limits:
    min_clip_seconds: float
    max_clip_seconds: float


@dataclasses.dataclass
class SplitIngest:
    """What ingesting one split produced, and what a person should know about it."""

    rows: list[dict[str, Any]]
    csv_records: int = 0  # data records in the CSV: the annotated rows that must all be present
    csv_found: bool = False  # the split has a CSV (it may still hold no record)
    notes: list[str] = dataclasses.field(default_factory=list)


class _Row:
    """A row being built: fields plus the issues met, in any order."""

    def __init__(self, id_: str, split: str, **fields: Any):
        self.fields: dict[str, Any] = {name: None for name in MELD_UTTERANCES.schema.names}
        self.fields.update(id=id_, split=split, stage_directions=[], speakers=[], quirks=[], **fields)
        self.issues: dict[Status, str] = {}

    def flag(self, status: Status, reason: str) -> None:
        self.issues.setdefault(status, reason)

    def quirk(self, *names: str) -> None:
        self.fields["quirks"].extend(n for n in names if n not in self.fields["quirks"])

    def finish(self) -> dict[str, Any]:
        ordered = [s for s in PRECEDENCE if s in self.issues]
        self.fields["issues"] = [str(s) for s in ordered]
        self.fields["status"] = str(ordered[0]) if ordered else str(Status.OK)
        self.fields["reason"] = "; ".join(self.issues[s] for s in ordered)
        return self.fields


def ingest_split(root: str | None, split: str, limits: Limits, shard: Shard | None = None) -> SplitIngest:
    """Rows of one split of a MELD.Raw root (an empty ingest, with a note, when there is none);
    with `shard`, only that shard's CSV records and clips (only they are probed)."""
    if root is None:
        return SplitIngest([], notes=["no [corpora.meld] section in the config: nothing ingested"])
    layout = find_split(root, split)
    result = SplitIngest([], notes=list(layout.notes))
    if layout.csv is None and layout.clips is None:
        result.notes.append(f"no {CSV_NAMES[split]} and no {CLIP_DIRS[split]}/ under {root}: "
                            f"the {split} split is absent, nothing to ingest")
        return result
    if layout.csv is None:
        result.notes.append(f"no {CSV_NAMES[split]} under {root}: every clip is unannotated")
    if layout.clips is None:
        result.notes.append(f"no {CLIP_DIRS[split]}/ under {root}: every utterance lacks its clip")

    rows = _annotated_rows(layout, result) if layout.csv else []
    clips = {p.name: p for p in clip_files(layout.clips, Path(root))} if layout.clips else {}
    if shard is not None and shard.sharded:
        rows = [r for r in rows if shard.holds(r.fields["id"])]
        clips = {n: p for n, p in clips.items() if shard.holds(f"{split}/{_clip_identity(n)[0]}")}
        result.csv_records = len(rows)  # the shard's records: each must be a row of its partition
    claimed = _attach_clips(rows, clips, layout, Path(root))
    rows += _unannotated_rows(clips, claimed, layout, Path(root))
    _check_timing(rows, limits)
    _mark_dialogue_gaps(rows, result)
    result.rows = [row.finish() for row in rows]
    return result


def _annotated_rows(layout: SplitLayout, result: SplitIngest) -> list[_Row]:
    csv_file = ann.read_csv(layout.csv)
    result.csv_found = True
    result.csv_records = csv_file.records
    result.notes.extend(csv_file.notes)
    split, rows, seen = layout.split, [], set()
    for line, fields, problem in csv_file.rows:
        fields = fields or {}
        dialogue, dialogue_bad = sources.bounded_int(fields.get("Dialogue_ID"), 0)
        utterance, utterance_bad = sources.bounded_int(fields.get("Utterance_ID"), 0)
        if dialogue is not None and utterance is not None:
            id_ = f"{split}/dia{dialogue}_utt{utterance}"
        else:
            id_ = f"{split}/csv_line{line}"
            why = "; ".join(f"{name} {bad}" for name, bad in (("Dialogue_ID", dialogue_bad), ("Utterance_ID", utterance_bad)) if bad)
            problem = problem or why or "Dialogue_ID or Utterance_ID is not a number"
        numbers = {}
        for column in ("Sr No.", "Season", "Episode"):
            numbers[column], bad = sources.bounded_int(fields.get(column))
            problem = problem or (f"{column} {bad}" if bad else "")
        for column in ("Speaker", "Emotion", "Sentiment", "StartTime", "EndTime"):
            if (bad := sources.control_characters(fields.get(column))) is not None:
                problem = problem or f"{column} holds the control character {bad}"
        duplicate = id_ in seen
        if duplicate:
            id_ = f"{id_}~line{line}"  # ids stay unique; the row stays visible
        seen.add(id_)
        text = fields.get("Utterance")
        speaker = fields.get("Speaker")
        row = _Row(
            id_, split,
            dialogue_id=dialogue, utterance_id=utterance, csv_line=line,
            sr_no=numbers["Sr No."], utterance=text, speaker=speaker,
            emotion=_clean(fields.get("Emotion")), sentiment=_clean(fields.get("Sentiment")),
            season=numbers["Season"], episode=numbers["Episode"],
            start_time=fields.get("StartTime"), end_time=fields.get("EndTime"),
        )
        if problem:
            row.flag(Status.MALFORMED_ROW, f"{layout.csv.name} line {line}: {problem}")
        if duplicate:
            row.flag(Status.DUPLICATE, f"{layout.csv.name} line {line} repeats dia{dialogue}_utt{utterance}")
        if text is not None:
            spoken = ann.spoken_text(text)
            row.fields.update(text=spoken.text, stage_directions=list(spoken.stage_directions))
            row.quirk(*spoken.quirks)
        if speaker is not None:
            speakers = ann.split_speakers(speaker)
            row.fields.update(speakers=speakers, speaker_combined=len(speakers) > 1)
            if len(speakers) > 1:
                row.quirk("combined_speaker")
        rows.append(row)
    return rows


def _clean(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


def _attach_clips(rows: list[_Row], clips: dict[str, Path], layout: SplitLayout, root: Path) -> set[str]:
    """Give each annotated row its clip (probed) or missing_media; the clip names used."""
    claimed, found = set(), []
    for row in rows:
        dialogue, utterance = row.fields["dialogue_id"], row.fields["utterance_id"]
        if dialogue is None or utterance is None:
            continue
        name = f"dia{dialogue}_utt{utterance}.mp4"
        if Status.DUPLICATE in row.issues:
            continue  # the first row with this id owns the clip
        if name in clips:
            claimed.add(name)
            found.append((row, clips[name]))
        elif layout.clips is None:
            row.flag(Status.MISSING_MEDIA, f"no clip folder {CLIP_DIRS[layout.split]}/ for {name}")
        else:
            row.flag(Status.MISSING_MEDIA, f"{name} is not in {layout.clips.name}/")
    _probe_all(found, root)
    return claimed


def _clip_identity(name: str) -> tuple[str, int | None, int | None, bool, str | None]:
    """(id stem, dialogue, utterance, follows MELD's naming, a control character in the name) of a
    clip file without a CSV row."""
    match = _CLIP_NAME.search(name)
    dialogue, _ = sources.bounded_int(match[1], 0) if match else (None, "")
    utterance, _ = sources.bounded_int(match[2], 0) if match else (None, "")
    standard = match is not None and match.start() == 0 and dialogue is not None and utterance is not None
    stem = f"dia{dialogue}_utt{utterance}" if standard else Path(name).stem
    bad = sources.control_characters(stem)
    if bad is not None:  # never into an id: the name is shown escaped in the reason
        stem = f"clip_{content_hash(name)}"
    return stem, dialogue, utterance, standard, bad


def _unannotated_rows(clips: dict[str, Path], claimed: set[str], layout: SplitLayout, root: Path) -> list[_Row]:
    rows, found = [], []
    csv_name = CSV_NAMES[layout.split]
    for name, path in sorted(clips.items()):
        if name in claimed:
            continue
        stem, dialogue, utterance, standard, bad = _clip_identity(name)
        row = _Row(
            f"{layout.split}/{stem}", layout.split,
            dialogue_id=dialogue if standard else None,
            utterance_id=utterance if standard else None,
        )
        if bad is not None:
            row.flag(Status.MALFORMED_ROW, f"the clip name {name!r} holds the control character {bad}")
        if layout.csv is None:
            row.flag(Status.NO_ANNOTATION, f"no {csv_name} to annotate {name}")
        elif standard:
            row.flag(Status.NO_ANNOTATION, f"{name} has no row in {csv_name}")
        else:
            row.flag(Status.NO_ANNOTATION, f"{name} is not named dia{{D}}_utt{{U}}.mp4 and has no row in {csv_name}")
        rows.append(row)
        found.append((row, path))
    _probe_all(found, root)
    return rows


def _probe_all(found: list[tuple[_Row, Path]], root: Path) -> None:
    with ThreadPoolExecutor(PROBE_WORKERS) as pool:
        for _ in pool.map(lambda item: _probe_into(*item, root), found):
            pass


def _probe_into(row: _Row, path: Path, root: Path) -> None:
    row.fields["clip_uri"] = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if isinstance(path, sources.OutsidePath):
        row.flag(Status.OUTSIDE_CORPUS, sources.outside_reason(path))
        return
    try:
        row.fields.update(clip_bytes=path.stat().st_size, clip_sha256=media.file_sha256(path))
        facts = media.probe(path)
    except media.MediaProblem as problem:
        row.flag(problem.status, problem.reason)
        return
    except Exception as exc:  # a clip no reader understands is a row, not a failed run
        row.flag(Status.CORRUPT_MEDIA, f"cannot probe {path.name}: {exc}")
        return
    row.fields.update(
        media_duration_s=facts.duration_s, video_codec=facts.video_codec, fps=facts.fps,
        width=facts.width, height=facts.height, audio_codec=facts.audio_codec,
        audio_channels=facts.audio_channels, audio_layout=facts.audio_layout,
        audio_sample_rate=facts.audio_sample_rate,
    )


def _check_timing(rows: list[_Row], limits: Limits) -> None:
    for row in rows:
        fields = row.fields
        start = end = None
        if fields["start_time"] is not None or fields["end_time"] is not None:
            try:
                start, start_quirks = ann.parse_timestamp(fields["start_time"])
                end, end_quirks = ann.parse_timestamp(fields["end_time"])
                row.quirk(*start_quirks, *end_quirks)
            except ann.BadTimestamp as exc:
                row.flag(Status.BAD_TIMESTAMP, str(exc))
                start = end = None
        if start is not None and end is not None:
            duration = round(end - start, 6)
            fields.update(start_s=start, end_s=end, duration_s=duration)
            if duration < 0:
                row.flag(Status.BAD_TIMESTAMP, f"EndTime {fields['end_time']} is before StartTime {fields['start_time']}")
            elif duration == 0:
                row.flag(Status.ZERO_DURATION, f"StartTime equals EndTime ({fields['start_time']})")
            elif duration < limits.min_clip_seconds:
                row.flag(Status.TOO_SHORT, f"{duration * 1000:.0f} ms by its timestamps (under {limits.min_clip_seconds:g} s)")
            elif duration > limits.max_clip_seconds:
                row.flag(Status.TOO_LONG, f"{duration:.1f} s by its timestamps (over {limits.max_clip_seconds:g} s)")
        media_s = fields["media_duration_s"]
        if media_s is not None and media_s > limits.max_clip_seconds:
            row.flag(Status.TOO_LONG, f"the clip runs {media_s:.1f} s (over {limits.max_clip_seconds:g} s)")


def _mark_dialogue_gaps(rows: list[_Row], result: SplitIngest) -> None:
    """Flag dialogues whose utterance ids skip numbers or start above 0 (kept as they are, never
    renumbered: the ids name the clips), and note dialogue ids missing from the range."""
    by_dialogue: dict[int, list[_Row]] = collections.defaultdict(list)
    for row in rows:
        if row.fields["csv_line"] is not None and row.fields["dialogue_id"] is not None \
                and row.fields["utterance_id"] is not None:
            by_dialogue[row.fields["dialogue_id"]].append(row)
    for members in by_dialogue.values():
        ids = sorted({r.fields["utterance_id"] for r in members})
        gap = ids != list(range(ids[0], ids[0] + len(ids)))
        late = ids[0] > 0
        for row in members:
            if gap:
                row.quirk("utterance_id_gap")
            if late:
                row.quirk("utterance_ids_start_above_0")
    if by_dialogue:
        absent = _absent_spans(sorted(by_dialogue))
        if absent:
            result.notes.append(f"dialogue ids absent from the CSV: {_ranges(absent)}")


MAX_SPANS_NOTED = 50  # a note names at most this many gaps; the rest are counted


def _absent_spans(present: list[int]) -> list[tuple[int, int]]:
    """The gaps between sorted, distinct ids as (first, last) spans: work and memory grow with the
    ids present, never with the size of the numbers (a Dialogue_ID of 99999999999 is one span)."""
    return [(a + 1, b - 1) for a, b in zip(present, present[1:]) if b > a + 1]


def _ranges(spans: list[tuple[int, int]]) -> str:
    """"1-3, 7, 9-10" for [(1, 3), (7, 7), (9, 10)]; after MAX_SPANS_NOTED spans, a count."""
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans[:MAX_SPANS_NOTED])
    more = len(spans) - MAX_SPANS_NOTED
    return shown + (f" and {more} more gaps" if more > 0 else "")


def to_arrow(rows: list[dict[str, Any]]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=MELD_UTTERANCES.schema)


# -- the asset ---------------------------------------------------------------------------------
STATUS_CHECK = "statuses_counted"
COMPLETE_CHECK = "no_annotated_row_lost"


@dg.asset(
    partitions_def=meld_splits,
    group_name="meld",
    code_version=INGEST_VERSION,
    check_specs=[
        dg.AssetCheckSpec(STATUS_CHECK, asset="meld_utterances",
                          description="Rows per status in this split; every non-ok row has a reason."),
        dg.AssetCheckSpec(COMPLETE_CHECK, asset="meld_utterances", blocking=True,
                          description="Every CSV record of the split is a row of the table."),
        shrink.spec("meld_utterances"),
    ],
)
def meld_utterances(
    context: AssetExecutionContext,
    store: StoreResource,
    corpora: CorporaResource,
    thresholds: ThresholdsResource,
) -> dg.MaterializeResult:
    """MELD utterances of one split, every CSV row and every clip, each with a status."""
    import polars as pl

    shard = sharding.parse(context.partition_key)
    split, part = shard.split, shard.key  # `part`: the split itself, or one shard of it
    limits = Limits(thresholds.min_clip_seconds, thresholds.max_clip_seconds)
    ingest = ingest_split(corpora.root("meld"), split, limits, shard)
    for note in ingest.notes:
        context.log.info(note)
    table = store.store().parquet(MELD_UTTERANCES.name)
    annotated_rows = pl.col("csv_line").is_not_null()
    before = shrink.annotated_counts(shrink.previous_frame(table, part), annotated_rows)
    version = table.write(to_arrow(ingest.rows), partition=part, fingerprint=INGEST_VERSION)
    written = table.read(partition=part, version=version.version)

    annotated = written.filter(pl.col("csv_line").is_not_null())
    lost = ingest.csv_records - annotated.height
    # A CSV without a single record beside clips is an emptied file, not an unannotated split.
    empty_csv = ingest.csv_found and ingest.csv_records == 0 and written.height > 0
    unexplained = written.filter((pl.col("status") != "ok") & (pl.col("reason") == "")).height
    counts = _counts(written, "status")
    checks = [
        dg.AssetCheckResult(
            check_name=STATUS_CHECK, passed=unexplained == 0,
            metadata={"rows by status": dg.MetadataValue.json(counts), "non-ok rows without a reason": unexplained},
        ),
        dg.AssetCheckResult(
            check_name=COMPLETE_CHECK, passed=lost == 0 and not empty_csv,
            metadata={"csv records": ingest.csv_records, "annotated rows": annotated.height, "lost": lost,
                      "problems": f"{CSV_NAMES[split]} holds no record while {written.height} clips wait for one"
                                  if empty_csv else "none"},
        ),
        shrink.check({part: before.get(split, 0)} if before else {}, {part: annotated.height},
                     thresholds.max_shrink_share, shrink.accepted(thresholds)),
    ]
    return table_result(
        written,
        data_version=version.metadata["content_hash"],
        check_results=checks,
        sample_columns=["id", "speaker", "text", "emotion", "duration_s", "status", "reason"],
        metadata={
            "split": split,
            **({"shard": f"{shard.index + 1} of {shard.count}"} if shard.sharded else {}),
            "annotated rows": annotated.height,
            "dialogues": annotated["dialogue_id"].n_unique(),
            "rows by issue": dg.MetadataValue.json(_counts(written, "issues")),
            "rows by quirk": dg.MetadataValue.json(_counts(written, "quirks")),
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in ingest.notes) or "(none)"),
            "table version": version.version,
        },
    )


def _counts(frame, column: str) -> dict[str, int]:
    import polars as pl

    if frame.height == 0:
        return {}
    values = frame[column].explode() if frame.schema[column] == pl.List(pl.String) else frame[column]
    counts = values.drop_nulls().value_counts(sort=True)
    return {str(v): int(n) for v, n in counts.iter_rows()}
