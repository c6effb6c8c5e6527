"""Readers of the acted-speech corpora, each from its published file naming, into item rows.

Labels, speakers and texts come from the file names (the folders only help find the files):

- RAVDESS (Livingstone & Russo 2018; zenodo.org/record/1188976): `Actor_01/03-01-05-01-02-01-12.wav`,
  seven two-digit fields: modality (01 audio-video, 02 video-only, 03 audio-only), vocal channel
  (01 speech, 02 song), emotion (01..08), intensity (01 normal, 02 strong), statement (01, 02),
  repetition (01, 02), actor (01..24). Audio-only files are `.wav`, the others `.mp4`; audio taken
  out of an audio-video clip keeps its `01` code and carries an `_audio` suffix. Only the seven
  fields are read. Neutral has no strong intensity; song has no disgust or surprise.
- CREMA-D (Cao et al. 2014; github.com/CheyneyComputerScience/CREMA-D): `AudioWAV/1001_DFA_ANG_XX.wav`,
  actor, sentence code, emotion, level (LO, MD, HI, XX unspecified). The label is the intended
  emotion the name gives (not the crowd's perceived rating).
- SAVEE (Haq & Jackson 2009): `DC_a01.wav` (or `AudioData/DC/a01.wav` as first distributed):
  speaker, emotion code (`sa` sadness and `su` surprise are read before the one-letter codes
  a, d, f, h, n), sentence number.
- TESS (Dupuis & Pichora-Fuller 2010; Toronto): `OAF_angry/OAF_back_angry.wav`: speaker (OAF, YAF),
  word, emotion (`ps`: pleasant surprise). Folder capitalisation varies between copies (`OAF_Fear`,
  `YAF_pleasant_surprised`), so the emotion is read from the file name only.
- EmoDB (Burkhardt et al. 2005; emodb.bilderbar.info): `wav/03a01Fa.wav`: speaker (2 digits),
  text code (a01..b10), emotion (German initial), version letter.
"""

from __future__ import annotations

import re
from pathlib import Path

from assets.corpora.scan import (
    AUDIO_SUFFIXES,
    VIDEO_SUFFIXES,
    CorpusScan,
    Problem,
    audio_problem,
    files_under,
    mark_duplicates,
    media_item,
    relative,
    sorted_rows,
    video_problem,
)
from storage.status import Status

# -- RAVDESS -----------------------------------------------------------------------------------
RAVDESS_MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
RAVDESS_CHANNEL = {"01": "speech", "02": "song"}
RAVDESS_EMOTION = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                   "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_INTENSITY = {"01": 1.0, "02": 2.0}  # normal, strong
RAVDESS_STATEMENT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
RAVDESS_REPETITION = ("01", "02")
RAVDESS_SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")  # song has no disgust or surprised
# The seven fields, then whatever a copy appended (`_audio` for audio taken out of a video clip).
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})(.*)$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d{2})$", re.IGNORECASE)
AUDIO_SUFFIX_MARK = "_audio"


def ravdess_fields(stem: str) -> dict[str, str] | None:
    """The seven fields of a RAVDESS file name (and what follows them), or None."""
    match = _RAVDESS_NAME.match(stem)
    if match is None:
        return None
    names = ("modality", "channel", "emotion", "intensity", "statement", "repetition", "actor", "rest")
    return dict(zip(names, match.groups()))


def ravdess_code_problem(fields: dict[str, str], media: str) -> str | None:
    """What is wrong with a file's seven fields for its media (audio or video), if anything."""
    checks = [
        ("modality", RAVDESS_MODALITY), ("channel", RAVDESS_CHANNEL), ("emotion", RAVDESS_EMOTION),
        ("intensity", RAVDESS_INTENSITY), ("statement", RAVDESS_STATEMENT),
    ]
    for field, known in checks:
        if fields[field] not in known:
            return f"unknown {field} code {fields[field]}"
    if fields["repetition"] not in RAVDESS_REPETITION:
        return f"unknown repetition code {fields['repetition']}"
    if fields["actor"] == "00":
        return "unknown actor code 00"
    if fields["emotion"] == "01" and fields["intensity"] == "02":
        return "neutral has no strong intensity in RAVDESS"
    if fields["channel"] == "02" and fields["emotion"] not in RAVDESS_SONG_EMOTIONS:
        return f"RAVDESS song has no {RAVDESS_EMOTION[fields['emotion']]}"
    if media == "audio" and fields["modality"] == "02":
        return "an audio file named with the video-only modality code 02"
    if media == "video" and fields["modality"] == "03":
        return "a video file named with the audio-only modality code 03"
    return None


def ravdess_id(fields: dict[str, str], media: str) -> str:
    """The seven-field code, with `_audio` for audio taken out of an audio-video or video code."""
    code = "-".join(fields[k] for k in ("modality", "channel", "emotion", "intensity", "statement",
                                         "repetition", "actor"))
    return code + (AUDIO_SUFFIX_MARK if media == "audio" and fields["modality"] != "03" else "")


def ravdess_performance(item_id: str) -> str:
    """The performance an item records, whatever its modality: fields 2..7 (`01-05-01-02-01-12`)."""
    return item_id.split("@")[0].removesuffix(AUDIO_SUFFIX_MARK)[3:]


def _ravdess_name_consistent(row: dict) -> int:
    """0 where a file's name fits its container (`03` in a wav, `01`/`02` in an mp4, audio out of a
    video code marked `_audio`), 1 otherwise: among files of one code the fitting name is kept."""
    path = row["path"] or ""
    fields = ravdess_fields(Path(path).stem) or {}
    if path.lower().endswith(AUDIO_SUFFIXES):
        expected = "" if fields.get("modality") == "03" else AUDIO_SUFFIX_MARK
    else:
        expected = ""
    return 0 if fields.get("rest", "") == expected else 1


def _ravdess_twin(row: dict, kept: dict) -> str:
    code = Path(row["path"]).stem[:20]
    why = "" if _ravdess_name_consistent(row) == 0 else "; its name does not fit its file type"
    return f"same recording code {code} as {kept['path']}{why}"


def read_ravdess(root: Path) -> CorpusScan:
    """RAVDESS speech and song, audio-only and audio-video, in `Actor_XX` folders or anywhere."""
    scan = CorpusScan(rows=[], layout="RAVDESS: MM-VV-EE-II-SS-RR-AA.{wav,mp4} files")
    for path in files_under(root, AUDIO_SUFFIXES + VIDEO_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        media = "audio" if path.suffix.lower() in AUDIO_SUFFIXES else "video"
        fields = ravdess_fields(path.stem)
        if fields is None:
            scan.rows.append(media_item("ravdess", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named MM-VV-EE-II-SS-RR-AA (RAVDESS's seven fields)")))
            continue
        item_id = ravdess_id(fields, media)
        raw = RAVDESS_EMOTION.get(fields["emotion"])
        problem = None
        if reason := ravdess_code_problem(fields, media):
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: {reason}")
        elif (folder := _ACTOR_FOLDER.match(path.parent.name)) and folder.group(1) != fields["actor"]:
            problem = Problem(Status.MALFORMED_ROW,
                              f"{path.name} names actor {fields['actor']} but lies in {path.parent.name}")
        else:
            problem = audio_problem(path) if media == "audio" else video_problem(path)
        if fields["rest"]:
            scan.quirk(f"suffix {fields['rest']!r} after the seven fields")
        scan.rows.append(media_item(
            "ravdess", item_id, raw, path=rel, speaker=f"Actor_{fields['actor']}",
            text=RAVDESS_STATEMENT.get(fields["statement"]),
            intensity=RAVDESS_INTENSITY.get(fields["intensity"]), problem=problem,
        ))
    duplicates = mark_duplicates(scan.rows, _ravdess_name_consistent, _ravdess_twin)
    if duplicates:
        scan.quirk("second file of one recording code", duplicates)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- CREMA-D -----------------------------------------------------------------------------------
CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
CREMAD_EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_LEVELS = {"LO": 1.0, "MD": 2.0, "HI": 3.0, "XX": None}  # XX: unspecified
_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def read_cremad(root: Path) -> CorpusScan:
    """CREMA-D's `AudioWAV/` (or wavs directly under the root); AudioMP3 and VideoFlash are not read."""
    folder = root / "AudioWAV"
    scan = CorpusScan(rows=[], layout="CREMA-D: AudioWAV/AAAA_SSS_EEE_LL.wav")
    if not folder.is_dir():
        scan.missing.append("AudioWAV/")
        folder = root
        scan.layout = "CREMA-D: AAAA_SSS_EEE_LL.wav under the root (no AudioWAV/)"
    for path in files_under(folder, AUDIO_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        match = _CREMAD_NAME.match(path.stem)
        if match is None:
            scan.rows.append(media_item("cremad", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named ACTOR_SENTENCE_EMOTION_LEVEL")))
            continue
        actor, sentence, emotion, level = match.groups()
        problem = None
        if sentence not in CREMAD_SENTENCES:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: unknown sentence code {sentence}")
        elif emotion not in CREMAD_EMOTIONS:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: unknown emotion code {emotion}")
        elif level not in CREMAD_LEVELS:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: unknown level code {level}")
        else:
            problem = audio_problem(path)
        scan.rows.append(media_item(
            "cremad", path.stem, emotion, path=rel, speaker=actor, text=CREMAD_SENTENCES.get(sentence),
            intensity=CREMAD_LEVELS.get(level), problem=problem,
        ))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- SAVEE -------------------------------------------------------------------------------------
SAVEE_EMOTIONS = ("sa", "su", "a", "d", "f", "h", "n")  # two-letter codes first
_SAVEE_FLAT = re.compile(r"^([A-Za-z]{2})_([A-Za-z]+?)(\d{2})$")
_SAVEE_NESTED = re.compile(r"^([A-Za-z]+?)(\d{2})$")
_SPEAKER_FOLDER = re.compile(r"^[A-Z]{2}$")


def savee_emotion(code: str) -> str | None:
    """The emotion code at the start of `code`, two-letter codes (`sa`, `su`) checked first."""
    for known in SAVEE_EMOTIONS:
        if code == known:
            return known
    return None


def read_savee(root: Path) -> CorpusScan:
    """SAVEE as `DC_a01.wav` (the common flat copy) or `AudioData/DC/a01.wav` (as first distributed)."""
    scan = CorpusScan(rows=[], layout="SAVEE: SS_Enn.wav or SS/Enn.wav")
    for path in files_under(root, AUDIO_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        flat = _SAVEE_FLAT.match(path.stem)
        nested = _SAVEE_NESTED.match(path.stem) if flat is None else None
        if flat:
            speaker, code, number = flat.group(1).upper(), flat.group(2).lower(), flat.group(3)
        elif nested and _SPEAKER_FOLDER.match(path.parent.name):
            speaker, code, number = path.parent.name, nested.group(1).lower(), nested.group(2)
        else:
            scan.rows.append(media_item("savee", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named SPEAKER_EMOTIONnn (e.g. DC_a01)")))
            continue
        emotion = savee_emotion(code)
        problem = (Problem(Status.MALFORMED_ROW, f"{path.name}: unknown emotion code {code!r}")
                   if emotion is None else audio_problem(path))
        scan.rows.append(media_item("savee", f"{speaker}_{code}{number}", emotion or code, path=rel,
                                    speaker=speaker, problem=problem))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- TESS --------------------------------------------------------------------------------------
TESS_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
TESS_EMOTION_ALIASES = {"pleasant_surprise": "ps", "pleasant_surprised": "ps"}
_TESS_NAME = re.compile(r"^([A-Za-z]{3})_(.+?)_(pleasant_surprised?|[A-Za-z]+)$", re.IGNORECASE)


def read_tess(root: Path) -> CorpusScan:
    """TESS: `OAF_back_angry.wav` in folders such as `OAF_angry` or `YAF_pleasant_surprised`."""
    scan = CorpusScan(rows=[], layout="TESS: SPK_word_emotion.wav")
    for path in files_under(root, AUDIO_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        match = _TESS_NAME.match(path.stem)
        if match is None:
            scan.rows.append(media_item("tess", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named SPEAKER_word_emotion (e.g. OAF_back_angry)")))
            continue
        speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
        if emotion in TESS_EMOTION_ALIASES:
            emotion = TESS_EMOTION_ALIASES[emotion]
            scan.quirk("pleasant surprise spelled out in the file name")
        if path.stem != f"{speaker}_{word}_{match.group(3).lower()}":
            scan.quirk("file name capitalised differently")
        problem = (Problem(Status.MALFORMED_ROW, f"{path.name}: unknown emotion {emotion!r}")
                   if emotion not in TESS_EMOTIONS else audio_problem(path))
        scan.rows.append(media_item("tess", f"{speaker}_{word}_{emotion}", emotion, path=rel,
                                    speaker=speaker, text=f"Say the word {word}", problem=problem))
    duplicates = mark_duplicates(scan.rows, describe=lambda row, kept: f"the same recording as {kept['path']}")
    if duplicates:
        scan.quirk("the same recording in two folders", duplicates)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- EmoDB -------------------------------------------------------------------------------------
EMODB_TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
EMODB_EMOTIONS = ("W", "L", "E", "A", "F", "T", "N")
_EMODB_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def read_emodb(root: Path) -> CorpusScan:
    """EmoDB's `wav/` folder (or the wavs directly under the root)."""
    folder = root / "wav"
    scan = CorpusScan(rows=[], layout="EmoDB: wav/SSTTTEV.wav")
    if not folder.is_dir():
        scan.missing.append("wav/")
        folder = root
        scan.layout = "EmoDB: SSTTTEV.wav under the root (no wav/)"
    for path in files_under(folder, AUDIO_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        match = _EMODB_NAME.match(path.stem)
        if match is None:
            scan.rows.append(media_item("emodb", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named SPEAKER TEXT EMOTION VERSION (e.g. 03a01Fa)")))
            continue
        speaker, text_code, emotion, _version = match.groups()
        if emotion not in EMODB_EMOTIONS:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: unknown emotion letter {emotion}")
        elif text_code not in EMODB_TEXTS:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name}: unknown text code {text_code}")
        else:
            problem = audio_problem(path)
        scan.rows.append(media_item("emodb", path.stem, emotion, path=rel, speaker=speaker,
                                    text=EMODB_TEXTS.get(text_code), problem=problem))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


AUDIO_READERS = {
    "cremad": read_cremad,
    "ravdess": read_ravdess,
    "savee": read_savee,
    "tess": read_tess,
    "emodb": read_emodb,
}
