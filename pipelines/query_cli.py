"""`emostore query` and `emostore speakers`: embedding rows by speaker, emotion and similarity,
misclassified predictions, speakers' counts and which voices or faces an encoder confuses.
The work is `storage/query.py`'s; this module turns options into its calls and prints frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

# The `[encoders.<role>]` whose rows a table holds: its default `--encoder`.
TABLE_ROLES = {
    "text_embeddings": "text", "whisper_text_embeddings": "text", "text_corpus_embeddings": "text",
    "corpus_text_embeddings": "text",
    "speaker_embeddings": "speaker", "corpus_speaker_embeddings": "speaker",
    "asr_embeddings": "asr", "corpus_asr_embeddings": "asr",
    "face_embeddings": "face_embedder", "speaking_faces": "face_embedder", "corpus_face_embeddings": "face_embedder",
}
FORMATS = ("table", "json", "csv")
HIDDEN = ("status", "encoder", "vector")  # columns every printed row shares, or cannot print


def register(app: typer.Typer, settings: Callable, fail: Callable) -> None:
    """Add `query` and `speakers` to the `emostore` app (`settings()` loads the configuration,
    `fail(message)` exits with one line on standard error)."""
    _cli.update(settings=settings, fail=fail)
    app.command("query")(query_command)
    app.command("speakers")(speakers_command)


_cli: dict[str, Callable] = {}  # the app's settings() and fail(), given by `register`


def _settings():
    return _cli["settings"]()


def fail(message: str):
    return _cli["fail"](message)


def query_command(
    table: Annotated[Optional[str], typer.Option("--table", help="Embedding table, e.g. speaker_embeddings, face_embeddings (per crop), corpus_speaker_embeddings.")] = None,
    modality: Annotated[Optional[str], typer.Option("--modality", "-m", help="text, whisper_text, speaker, asr or face (per utterance: the speaking face).")] = None,
    speaker: Annotated[Optional[list[str]], typer.Option("--speaker", "-s", help="Speaker (repeatable).")] = None,
    emotion: Annotated[Optional[str], typer.Option("--emotion", "-e", help="Emotion (the label in corpus tables).")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="train, dev or test.")] = None,
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="Corpus (corpus tables), e.g. cremad.")] = None,
    dialogue: Annotated[Optional[int], typer.Option("--dialogue", help="MELD dialogue number.")] = None,
    status: Annotated[str, typer.Option("--status", help="Row status to keep, or 'any'.")] = "ok",
    where: Annotated[Optional[str], typer.Option("--where", help="SQL filter over the table's columns, e.g. \"emotion != 'neutral'\".")] = None,
    like: Annotated[Optional[str], typer.Option("--like", help="Item id: its nearest neighbours (itself excluded).")] = None,
    like_table: Annotated[Optional[str], typer.Option("--like-table", help="Table holding the --like item (default: the queried table; the same encoder).")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Text the configured text encoder embeds as the query (text tables).")] = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours to return (rows to print without a query).")] = 10,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Whose rows (the `encoder` column); default: the configured encoder's.")] = None,
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Table version number or tag (as of then).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    export: Annotated[Optional[Path], typer.Option("--export", help="Write every matching row with its vector to this Parquet file.")] = None,
    approximate: Annotated[bool, typer.Option("--approximate", help="Use the table's vector index (IVF_PQ; built on first use): faster, not exact.")] = False,
    predictions_of: Annotated[Optional[str], typer.Option("--predictions", help="Query a training cell's predictions instead (a cell id or pattern).")] = None,
    wrong: Annotated[bool, typer.Option("--wrong", help="With --predictions: only misclassified utterances.")] = False,
) -> None:
    """Rows of an embedding table by speaker, emotion, split, corpus or dialogue, or their
    nearest neighbours (exact cosine search over the filtered rows of one encoder)."""
    config = _settings()
    from storage import Store
    from storage import query as q

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}")
    store = Store(config.store.root)
    filters = q.Filters(speakers=tuple(speaker or ()), emotion=emotion, split=split, corpus=corpus,
                        dialogue=dialogue, status=None if status == q.ANY_STATUS else status, where=where)
    try:
        if predictions_of is not None:
            if table or modality or like or text:
                fail("--predictions queries a cell's predictions: drop --table, --modality, --like and --text")
            frame = q.predictions(store, predictions_of, wrong=wrong, filters=filters)
            _emit(frame, fmt, export, k, note=f"{frame.height} predictions" + (" misclassified" if wrong else ""))
            return
        _search(config, store, q.resolve_table(table, modality), filters, like=like, like_table=like_table, text=text,
                k=k, encoder=encoder, version=version, fmt=fmt, export=export, approximate=approximate)
    except q.QueryError as exc:
        fail(_with_role(str(exc), encoder, table or q.MODALITY_TABLES.get(modality or "", "")))
    except ValueError as exc:  # a schema lookup or a value Lance refuses
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _search(config, store, name: str, filters, *, like, like_table, text, k, encoder, version, fmt, export,
            approximate) -> None:
    """`query` over an embedding table: filtered rows, or the nearest to `--like` or `--text`."""
    from storage import query as q

    parsed_version = int(version) if version and version.isdigit() else version
    chosen = encoder or _configured_encoder(config, name)
    vector = None
    if text is not None:
        if like:
            fail("give --like or --text, not both")
        if name not in q.TEXT_TABLES:
            fail(f"--text needs a text table ({', '.join(q.TEXT_TABLES)}); {name} is not one")
        vector = _embed_text(config, text, chosen, fail)
    if approximate:
        _ensure_vector_index(store, name, fail)
    search = vector is not None or like is not None
    common = dict(filters=filters, vector=vector, encoder=chosen, version=parsed_version,
                  approximate=approximate, like=q.Like(like, like_table) if like else None)
    frame = q.query(store, name, k=k, limit=None if search else k, **common)
    note = f"{name}: {frame.height} rows" + (f" nearest {'(approximate)' if approximate else '(exact)'}" if search else "")
    if export is not None:
        exported = q.query(store, name, k=None, with_vectors=True, **common)
        _write_parquet(exported, export)
        typer.echo(f"{exported.height} rows with vectors -> {export}", err=True)
    _emit(frame, fmt, None, None, note=note)


def speakers_command(
    table: Annotated[str, typer.Argument(help="Embedding table (speaker_embeddings, face_embeddings, speaking_faces, text_embeddings, corpus_speaker_embeddings, ...).")] = "speaker_embeddings",
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Whose rows; default: the configured encoder's.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Only this split.")] = None,
    status: Annotated[str, typer.Option("--status", help="Row status to count, or 'any'.")] = "ok",
    min_utterances: Annotated[int, typer.Option("--min-utterances", help="Speakers with at least this many rows enter the centroid similarity.")] = 20,
    top: Annotated[int, typer.Option("--top", help="Most similar speaker pairs to print.")] = 15,
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Table version number or tag.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv (csv: the counts).")] = "table",
) -> None:
    """Speakers with their row counts per split and emotion, and the cosine similarity between
    the centroids of speakers with enough rows (which voices or faces the encoder confuses)."""
    config = _settings()
    from storage import Store
    from storage import query as q

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}")
    store = Store(config.store.root)
    filters = q.Filters(split=split, status=None if status == q.ANY_STATUS else status)
    try:
        name = q.resolve_table(table)
        chosen = encoder or _configured_encoder(config, name)
        parsed_version = int(version) if version and version.isdigit() else version
        counts = q.speaker_counts(store, name, encoder=chosen, filters=filters, version=parsed_version)
        similarity = q.centroid_similarity(store, name, encoder=chosen, filters=filters, min_rows=min_utterances,
                                           version=parsed_version)
    except q.QueryError as exc:
        fail(_with_role(str(exc), encoder, table))
    pairs = q.confused_speakers(similarity, top)
    if fmt == "json":
        typer.echo(json.dumps({"counts": counts.to_dicts(), "centroid_similarity": similarity.to_dicts(),
                               "most_similar_pairs": pairs.to_dicts()}, indent=1, default=str))
        return
    if fmt == "csv":
        typer.echo(counts.write_csv().rstrip("\n"))
        return
    typer.echo(f"{name}: {counts.height} speakers, {int(counts['rows'].sum())} rows")
    _print(counts, rows=40)
    typer.echo(f"\ncentroid similarity (cosine) of the {similarity.height} speakers with at least "
               f"{min_utterances} rows" + ("" if similarity.height > 1 else ": fewer than two such speakers"))
    if similarity.height > 1:
        if similarity.height <= 12:
            _print(similarity.with_columns(similarity[c].round(3) for c in similarity.columns[1:]), rows=12)
        typer.echo("most similar pairs:")
        _print(pairs.with_columns(pairs["similarity"].round(4)), rows=top)


def _with_role(message: str, given: str | None, table: str | None) -> str:
    """A missing encoder's message, saying it is the configured one when no --encoder was given."""
    if given is None and "no rows of encoder" in message and table in TABLE_ROLES:
        return f"{message} (the configured [encoders.{TABLE_ROLES[table]}]'s; choose one with --encoder)"
    return message


def _configured_encoder(config, table: str) -> str | None:
    role = TABLE_ROLES.get(table)
    encoder = config.encoders.get(role) if role else None
    return encoder.spec().encoder() if encoder is not None else None


def _embed_text(config, text: str, encoder: str | None, fail) -> "object":
    from models.encoders.sentence import SentenceEncoder

    spec = config.encoders["text"].spec()
    if encoder is not None and encoder != spec.encoder():
        fail(f"--text embeds with the configured text encoder {spec.label} ({spec.encoder()}); "
             f"rows of encoder {encoder} cannot be searched with it")
    try:
        return SentenceEncoder.from_spec(spec).encode([text])[0]
    except Exception as exc:  # weights missing offline: the encoder says where to put them
        fail(f"cannot embed --text with {spec.label}: {str(exc).splitlines()[0]}")


def _ensure_vector_index(store, name: str, fail) -> None:
    from storage import query as q

    if store.table(name).schema.format != "lance":
        fail(f"{name} is Parquet: it has no vector index (drop --approximate)")
    dataset = store.lance(name).table().to_lance()
    if not any("vector" in d.field_names for d in dataset.describe_indices()):
        typer.echo(f"building an IVF_PQ vector index on {name} ...", err=True)
        q.build_vector_index(store, name)


def _write_parquet(frame, path: Path) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.write_parquet(temp)
    os.replace(temp, path)


def _emit(frame, fmt: str, export: Optional[Path], k: Optional[int], note: str) -> None:
    if export is not None:
        _write_parquet(frame, export)
        typer.echo(f"{frame.height} rows -> {export}", err=True)
    shown = frame.head(k) if k is not None and fmt == "table" else frame
    shown = shown.drop([c for c in HIDDEN if c in shown.columns])
    if fmt == "json":
        typer.echo(json.dumps(shown.to_dicts(), indent=1, default=str))
    elif fmt == "csv":
        typer.echo(shown.write_csv().rstrip("\n"))
    else:
        typer.echo(note, err=True)
        _print(shown, rows=max(shown.height, 1))


def _print(frame, rows: int) -> None:
    import polars as pl

    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=50, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        typer.echo(frame)
