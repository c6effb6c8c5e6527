"""Face review: HTML contact sheets of each speaker's gallery, and the review file a person edits.

`emostore review faces` calls `write_review`: one page per speaker showing every crop the
gallery considered (members, outliers, excluded) with its id, similarity and labelled speaker,
an index page, and (only if it does not exist yet) the review file with its instructions. The
person then lists crop ids under `exclude` or `[reassign]`; the next `emostore update` rebuilds
the gallery and everything downstream of it.
"""

import base64
import dataclasses
import html
from pathlib import Path

from storage import Store, media
from storage.schemas.vision import SPEAKER_GALLERY, SPEAKER_GALLERY_FACES

VERDICT_ORDER = ("member", "outlier", "excluded")
STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
.crops { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; width: 168px; font-size: 11px; text-align: center; }
figure img { width: 160px; height: 160px; border: 4px solid #3a3; }
figure.outlier img { border-color: #e80; } figure.excluded img { border-color: #c22; opacity: .6; }
code { user-select: all; }
"""


@dataclasses.dataclass(frozen=True)
class ReviewSheets:
    index: Path
    pages: dict[str, Path]  # speaker -> page
    review_file: Path
    review_file_created: bool


def write_review(store: Store, out_dir: Path, review_file: Path) -> ReviewSheets:
    """Write the contact sheets under `out_dir` and the review file template if it is absent."""
    from models.face_gallery import REVIEW_TEMPLATE

    faces_table = store.parquet(SPEAKER_GALLERY_FACES.name)
    if not faces_table.exists():
        raise FileNotFoundError("speaker_gallery has not been materialized yet: run `emostore update speaker_gallery`")
    crops = faces_table.read()
    people = {r["speaker"]: r for r in store.parquet(SPEAKER_GALLERY.name).read().iter_rows(named=True)}
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {}
    for speaker in sorted(crops["speaker"].unique().to_list()):
        mine = crops.filter(crops["speaker"] == speaker)
        page = out_dir / f"{_file_name(speaker)}.html"
        page.write_text(_speaker_page(speaker, mine, people.get(speaker), review_file), encoding="utf-8")
        pages[speaker] = page
    index = out_dir / "index.html"
    index.write_text(_index_page(pages, people, review_file), encoding="utf-8")
    created = not review_file.exists()
    if created:
        review_file.parent.mkdir(parents=True, exist_ok=True)
        review_file.write_text(REVIEW_TEMPLATE, encoding="utf-8")
    return ReviewSheets(index, pages, review_file, created)


def _file_name(speaker: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in speaker) or "_"


def _speaker_page(speaker: str, crops, person, review_file: Path) -> str:
    summary = ""
    if person is not None:
        summary = (f"<p>{person['members']} members, {person['outliers']} outliers, {person['excluded']} "
                   f"excluded, {person['reassigned_in']} reassigned in; status {html.escape(person['status'])}</p>")
    sections = []
    for verdict in VERDICT_ORDER:
        rows = crops.filter(crops["verdict"] == verdict).sort("crop_id")
        if rows.height == 0:
            continue
        figures = "\n".join(_figure(r) for r in rows.iter_rows(named=True))
        sections.append(f"<h2>{verdict} ({rows.height})</h2>\n<div class='crops'>\n{figures}\n</div>")
    return _page(
        f"Face review: {speaker}",
        f"<p><a href='index.html'>all speakers</a> &middot; review file: <code>{html.escape(str(review_file))}</code>"
        "<br>To drop a crop, add its id to <code>exclude</code>; to move it to another speaker, add "
        "<code>\"crop id\" = \"Name\"</code> under <code>[reassign]</code>.</p>" + summary + "\n".join(sections),
    )


def _figure(row) -> str:
    try:
        data = base64.b64encode(media.read_media(row["crop_uri"])).decode()
        image = f"<img src='data:image/png;base64,{data}' alt='{html.escape(row['crop_id'])}'>"
    except OSError:
        image = "<div>(crop file missing)</div>"
    similarity = "" if row["similarity"] is None else f"{row['similarity']:.3f}"
    note = f" &middot; {html.escape(row['reviewed'])}" if row["reviewed"] else ""
    label = html.escape(row["labelled_speaker"] or "")
    return (f"<figure class='{row['verdict']}'>{image}<figcaption><code>{html.escape(row['crop_id'])}</code>"
            f"<br>sim {similarity} &middot; label {label}{note}</figcaption></figure>")


def _index_page(pages: dict[str, Path], people: dict, review_file: Path) -> str:
    items = []
    for speaker, page in pages.items():
        person = people.get(speaker) or {}
        items.append(f"<li><a href='{page.name}'>{html.escape(speaker)}</a>: {person.get('members', 0)} members, "
                     f"{person.get('outliers', 0)} outliers, {person.get('excluded', 0)} excluded</li>")
    return _page("Face review", f"<p>Review file: <code>{html.escape(str(review_file))}</code></p><ul>{''.join(items)}</ul>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
