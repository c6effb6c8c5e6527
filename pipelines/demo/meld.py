"""The demo MELD.Raw: a small corpus in MELD's distributed layout with its known quirks planted.

`write(root, seed)` writes `root/meld`: the three official CSVs and the three clip folders
(`train_splits/`, `dev_splits_complete/`, `output_repeated_splits_test/`) of `dia{D}_utt{U}.mp4`
clips, H.264 1280x720 at 23.976 fps (a few 25 fps 496x384, as in MELD) with 5.1 AAC audio at
48 kHz in which one channel carries the voice. Five cast members each have a synthetic voice
(`speech.py`) and a real face photo (`faces.py`; public domain or MIT, see faces/NOTICE) that
drifts and scales over a set; some clips show a second cast member listening.
`ground_truth.json` beside the CSVs says who speaks, what is said, on which channel, and where
every face is at t = 0, 1, 2, ... s, and lists each planted quirk with the status the pipeline
should give it (the ingest, or for the audio-side quirks clip_audio and transcript_alignment).
The same seed writes the same files.

`write(root, seed, clips=N)` writes a benchmark corpus of N clip files: the scripted demo (every
quirk planted once) followed by ordinary dialogues (no quirk: one speaker voiced on one channel,
an annotated row, sometimes a listener) in MELD's split proportions, drawn from the seed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipelines.demo import faces
from pipelines.demo.speech import Voice, synthesize

CORPORA = ("meld",)

COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
           "Season", "Episode", "StartTime", "EndTime")
CSV_NAMES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
CLIP_FOLDERS = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
CRLF_SPLITS = {"dev"}  # this CSV gets Windows line ends, as some MELD copies have

HD = ((1280, 720), Fraction(24000, 1001))  # MELD's usual clips: 23.976 fps
SMALL = ((496, 384), Fraction(25))  # the few 25 fps clips MELD also has
SAMPLE_RATE = 48_000
LAYOUT = "5.1"  # FL FR FC LFE BL BR
CHANNELS = 6
LFE = 3
# Where the voice goes: mostly the centre (2), as in most of MELD, but any channel but the LFE.
VOICE_CHANNELS = tuple(c for c in range(CHANNELS) if c != LFE)
VOICE_WEIGHTS = (0.15, 0.15, 0.4, 0.15, 0.15)

MIN_SECONDS, MAX_SECONDS = 1.5, 4.0  # clip length bounds; the speech sets it in between
LEAD, TAIL = (0.2, 0.45), (0.2, 0.4)  # silence before and after the speech, seconds
NOISE_LEVEL = 10 ** (-60 / 20)  # the faint noise some silent channels carry (-60 dBFS)
SPEECH_PEAK = 0.5
TWO_FACE_SHARE = 0.3


@dataclasses.dataclass(frozen=True)
class CastMember:
    face: str  # a faces.IDENTITIES name
    voice: Voice


CAST: dict[str, CastMember] = {
    "Joey": CastMember("barack_obama", Voice("m3", pitch=42, pitch_range=55, rate=165)),
    "Chandler": CastMember("joe_biden", Voice("m7", pitch=58, pitch_range=70, rate=175)),
    "Ross": CastMember("luis_pedro_coelho", Voice("m1", pitch=30, pitch_range=40, rate=155)),
    "Rachel": CastMember("eileen_collins", Voice("f2", pitch=60, pitch_range=60, rate=170)),
    "Phoebe": CastMember("grace_hopper", Voice("f4", pitch=78, pitch_range=75, rate=160)),
}

SENTIMENT = {"neutral": "neutral", "joy": "positive", "surprise": "positive", "anger": "negative",
             "sadness": "negative", "fear": "negative", "disgust": "negative"}


@dataclasses.dataclass(frozen=True)
class Line:
    """One utterance of the script, with the quirks planted on it."""

    utt: int
    speaker: str  # as written in the CSV ("Joey and Chandler" too)
    emotion: str
    text: str  # correct UTF-8; stage directions in brackets are written but not spoken
    sentiment: str = ""  # default: from the emotion
    media: str = "clip"  # clip | missing | corrupt
    annotated: bool = True  # False: a clip with no CSV row
    mojibake: bool = False  # write the text as cp1252-decoded UTF-8 bytes ("Iâ€™m")
    span: float | None = None  # timestamps say this many seconds, whatever the clip's length
    stamp: str = ""  # "one_digit_hour" | "two_digit_ms": how the timestamps are written
    listener: str = ""  # a second face, forced
    file: str = ""  # a clip file name other than dia{D}_utt{U}.mp4
    says: str = ""  # the voice says this other line instead of `text` (a clip misaligned with its row)
    track: str = "speech"  # speech | silent (digital silence on every channel) | none (no audio stream)
    quirk: str = ""  # expected status and handling, for ground_truth.json

    @property
    def voice_of(self) -> str:
        """The cast member whose voice and face the clip has (the first one named)."""
        return re.split(r" and |/", self.speaker)[0]

    @property
    def voiced(self) -> str:
        """The line the voice says; it also sets the clip's length where the track has no voice."""
        return spoken_text(self.says or self.text)

    @property
    def heard(self) -> str:
        """What the clip's audio says: nothing where its track is silent or absent."""
        return self.voiced if self.track == "speech" else ""


@dataclasses.dataclass(frozen=True)
class Dialogue:
    split: str
    id: int
    season: int
    episode: int
    lines: tuple[Line, ...]
    small: bool = False  # 25 fps 496x384 clips
    quirk: str = ""


SCRIPT: tuple[Dialogue, ...] = (
    # -- train ---------------------------------------------------------------------------------
    Dialogue("train", 0, 8, 21, (
        Line(0, "Chandler", "neutral", "So, how was the interview?", stamp="one_digit_hour",
             quirk="ok: one-digit hour (0:MM:SS,mmm) parsed"),
        Line(1, "Joey", "joy", "I think it went great!", stamp="one_digit_hour"),
        Line(2, "Chandler", "surprise", "Really? They liked you?"),
        Line(3, "Joey", "neutral", "Well, they said they'd call."),
        Line(4, "Chandler", "sadness", "Oh. That's what they always say.", sentiment="negative"),
    )),
    Dialogue("train", 57, 4, 10, (
        Line(1, "Chandler", "neutral", "Are you seeing anybody right now?"),
        Line(2, "Chandler", "fear", "No, I’m not asking for me, I’m… I mean…", mojibake=True,
             quirk="ok: cp1252 mojibake in the CSV text (Iâ€™m); normalized to I’m, original kept"),
        Line(3, "Phoebe", "joy", "Oh, that's so sweet!"),
    ), quirk="ok: utterance ids start at 1"),
    Dialogue("train", 59, 3, 24, (
        Line(0, "Ross", "neutral", "So the lines all go up."),
        Line(1, "Rachel", "joy", "Great job, team!"),
        Line(2, "Ross", "neutral", "Tomorrow at eight thirty."),
    )),
    # Dialogue 60 is absent from train, as in MELD: 59 and 61 exist.
    Dialogue("train", 61, 3, 24, (
        Line(0, "Joey", "neutral", "Oh, excuse me. I forgot my bag.", quirk="ok: 25 fps 496x384 clip"),
        Line(1, "Rachel", "joy", "Of course you did.", quirk="ok: 25 fps 496x384 clip"),
        Line(2, "Joey", "sadness", "That's ridiculous.", quirk="ok: 25 fps 496x384 clip"),
    ), small=True),
    Dialogue("train", 65, 1, 7, (
        Line(0, "Ross", "neutral", "I got you something."),
        Line(1, "Rachel", "surprise", "For me? Ross!"),
        Line(3, "Rachel", "joy", "Oh Ross, you're so great. [she playfully rubs his head and gets up]",
             quirk="ok: stage direction in brackets kept in the text, not spoken"),
    ), quirk="ok: utterance ids have a gap (0, 1, 3)"),
    Dialogue("train", 125, 4, 18, (
        Line(0, "Rachel", "neutral", "Is it time to go?"),
        Line(1, "Ross", "neutral", "Hey, that clock’s a little fast.",
             quirk="ok: correct UTF-8 (curly apostrophe) left untouched"),
        Line(2, "Rachel", "joy", "What can we do in ten minutes?"),
        Line(3, "Ross", "surprise", "Twice?", media="corrupt",
             quirk="corrupt_media: the mp4 is truncated (no moov atom)"),
    )),
    Dialogue("train", 309, 4, 5, (
        Line(0, "Chandler", "joy", "Kathy! Kathy! Hi!", span=41.04,
             quirk="too_long: 41 s by its timestamps (the clip itself is short)"),
        Line(1, "Joey", "neutral",
             "Hey, wait up! (She doesn't hear him and keeps running, Chandler starts chasing her as the theme to",
             quirk="ok: stage direction cut off without its closing bracket; kept, not spoken"),
    )),
    Dialogue("train", 338, 6, 2, (
        Line(0, "Phoebe", "neutral", "Did anybody see my keys?"),
        Line(1, "Joey", "neutral", "Check the fridge."),
        Line(2, "Phoebe", "disgust", "Why would they be in the fridge?"),
        Line(3, "Joey", "neutral", "Oh.", span=0.006,
             quirk="too_short: 6 ms by its timestamps"),
    )),
    Dialogue("train", 437, 8, 19, (
        Line(0, "Joey and Chandler", "anger", "Hey!", listener="Chandler",
             quirk="ok: combined speaker 'Joey and Chandler' kept as written"),
        Line(1, "Phoebe", "surprise", "Check it out! This is unbelievable!"),
        Line(2, "Joey", "neutral", "What are you trying to do, kill me?", stamp="two_digit_ms",
             quirk="ok: two-digit millisecond field in EndTime (,28 is 0.28 s)"),
    )),
    # -- dev -----------------------------------------------------------------------------------
    Dialogue("dev", 0, 9, 5, (
        Line(0, "Rachel", "neutral", "Can I get a coffee, please?"),
        Line(1, "Joey", "joy", "Make that two!"),
        Line(2, "Phoebe/Waitress", "neutral", "Coming right up.",
             quirk="ok: combined speaker 'Phoebe/Waitress' kept as written"),
    )),
    Dialogue("dev", 49, 1, 23, (
        Line(0, "Ross", "anger", "Please. This is so your fault."),
        Line(1, "Rachel", "surprise", "How is this my fault?", sentiment="negative"),
        Line(2, "Ross", "anger", "You never listen to me."),
        Line(3, "Rachel", "anger", "Well, there's a lot you never did."),
        Line(4, "Phoebe", "anger", "Hey, okay, that's it!", annotated=False,
             quirk="no_annotation: a clip with no CSV row"),
        Line(5, "Phoebe", "anger", "Get in here.", annotated=False,
             quirk="no_annotation: a clip with no CSV row"),
        Line(6, "Phoebe", "neutral", "Come on."),
    )),
    Dialogue("dev", 66, 7, 23, (
        Line(0, "Phoebe", "surprise", "Oh my God! Chandler just left!", sentiment="negative"),
        Line(1, "Rachel", "neutral", "Maybe it’s not what we think.", mojibake=True,
             quirk="ok: cp1252 mojibake in the CSV text (itâ€™s); normalized, original kept"),
        Line(2, "Ross", "surprise", "I think he freaked out!", sentiment="negative"),
        Line(9, "Ross", "neutral", "Okay?", annotated=False,
             quirk="no_annotation: a clip with no CSV row"),
        Line(10, "Ross", "neutral", "Make sure Monica doesn't find out.", annotated=False,
             quirk="no_annotation: a clip with no CSV row"),
        Line(11, "Ross", "neutral", "I will find him."),
    )),
    Dialogue("dev", 110, 6, 11, (
        Line(0, "Phoebe", "neutral", "They gave you the old pricing."),
        Line(1, "Rachel", "neutral", "Yeah."),
        Line(2, "Phoebe", "neutral", "What period is it from?"),
        Line(3, "Rachel", "neutral", "It's from yore."),
        Line(4, "Phoebe", "neutral", "Yes, yes I do."),
        Line(5, "Phoebe", "joy", "Oh, it's just perfect!"),
        Line(6, "Phoebe", "joy", "I bet it has a great story."),
        Line(7, "Phoebe", "neutral", "Did they tell you anything?", media="missing",
             quirk="missing_media: in the CSV, but dia110_utt7.mp4 is absent"),
    )),
    # -- test ----------------------------------------------------------------------------------
    Dialogue("test", 0, 2, 14, (
        Line(0, "Rachel", "neutral", "Why do all your coffee mugs have numbers?"),
        Line(1, "Chandler", "joy", "It's a very elaborate system."),
        Line(2, "Ross", "surprise", "Wait, wait! [Ross grabs the", sentiment="negative",
             quirk="ok: stage direction cut off without its closing bracket; kept, not spoken"),
        Line(3, "Rachel", "neutral", "Okay, go ahead."),
    )),
    Dialogue("test", 17, 5, 3, (
        Line(0, "Joey", "neutral", "How you doin'?", quirk="ok: 25 fps 496x384 clip"),
        Line(1, "Phoebe", "joy", "Oh, I'm good!", quirk="ok: 25 fps 496x384 clip"),
        Line(2, "Joey", "joy", "Great. Me too.", quirk="ok: 25 fps 496x384 clip"),
    ), small=True),
    Dialogue("test", 155, 3, 9, (
        Line(0, "Chandler", "neutral", "Could this be any longer?"),
        Line(1, "Rachel", "anger", "Don’t start with me.", mojibake=True,
             quirk="ok: cp1252 mojibake in the CSV text (Donâ€™t); normalized, original kept"),
        Line(2, "Chandler", "fear", "Okay, okay."),
        Line(3, "Ross", "neutral", "Hi, guys.", span=0.0,
             quirk="zero_duration: StartTime equals EndTime"),
    )),
    Dialogue("test", 220, 7, 1, (
        Line(0, "Phoebe", "joy", "Happy birthday to you!", span=235.0,
             quirk="too_long: 235 s by its timestamps (the clip itself is short)"),
        Line(1, "Rachel", "joy", "Thank you, Phoebe!"),
        Line(2, "Joey", "neutral", "Where's the cake?"),
    )),
    # The audio-side quirks close the script, so that planting them moved no other clip's draws.
    Dialogue("test", 280, 4, 2, (
        Line(0, "Chandler", "neutral", "Is this the right room?", annotated=False,
             file="final_videos_testdia280_utt0.mp4",
             quirk="no_annotation: a final_videos_test* clip with no CSV row"),
        Line(1, "Joey", "neutral", "Yeah, come on in, everybody's here.",
             says="Where did you put the remote control?",
             quirk="misaligned: the voice says another line (Where did you put the remote control?); "
                   "transcript_alignment filters it by WER"),
        Line(2, "Rachel", "surprise", "Wait, where is the music?", track="silent",
             quirk="silent: the audio track is digital silence on every channel; clip_audio finds no voice"),
        Line(3, "Phoebe", "joy", "I brought my guitar!", track="none",
             quirk="no_audio: the mp4 has a video stream and no audio stream; clip_audio says so"),
    )),
)

FILE_QUIRKS = {
    "dev_sent_emo.csv": "ok: CRLF line ends",
    "train_sent_emo.csv": "ok: Sr No. repeats (train dia59_utt2 and dia61_utt0 share one); ids come from dialogue and utterance",
    "train/dia60": "absent: no train dialogue 60 (59 and 61 exist); nothing to ingest",
}
REPEATED_SR_NO = ("train", 61, 0)  # takes the Sr No. of the row before it
TWO_DIGIT_MS = 0.28  # MELD's `00:06:47,28` (train dia437_utt2): the EndTime's fraction, in hundredths


# -- the writer ----------------------------------------------------------------------------------
# -- ordinary dialogues, for corpora of any size -------------------------------------------------
ORDINARY_TEXTS = (
    "I can't believe you did that.", "Where are you going?", "We should talk about this later.",
    "That's the best thing I've heard all day.", "Could you pass me the salt?",
    "I don't know what you're talking about.", "Let's get out of here.", "You look great tonight.",
    "Who told you that?", "I was just about to call you.", "This is not what I ordered.",
    "Why is everybody staring at me?", "We're going to be late again.", "I think I left the stove on.",
    "You have to see this.", "It's only a movie.", "Please don't tell anyone.", "How long have you known?",
    "I'm so proud of you.", "That was the worst date ever.", "Give me five more minutes.",
    "I need a new apartment.", "Nobody ever listens to me.", "What time does the game start?",
    "I love this song.", "He said he would be here by noon.", "Are you kidding me?",
    "I'll get the next round.", "She never called me back.", "The couch is still wet.",
)
ORDINARY_EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust")
ORDINARY_EMOTION_SHARES = (0.47, 0.17, 0.12, 0.11, 0.07, 0.03, 0.03)  # about MELD train's mix
SPLIT_SHARES = {"train": 0.8, "dev": 0.09, "test": 0.11}  # MELD: 9989, 1109, 2610 utterances
ORDINARY_FIRST_DIALOGUE = 1000  # above every scripted id


def scripted_clip_count() -> int:
    """Clip files the scripted demo writes (the smallest `clips` a corpus can have)."""
    return len(plan_clips(Path("."), 0))


def script_for(clips: int | None, seed: int) -> tuple[Dialogue, ...]:
    """The scripted demo, plus ordinary dialogues up to `clips` clip files (None: the demo alone)."""
    if clips is None:
        return SCRIPT
    extra = clips - scripted_clip_count()
    if extra < 0:
        raise ValueError(f"a demo corpus has at least {scripted_clip_count()} clips (the scripted ones); asked for {clips}")
    rng = np.random.default_rng([seed, 0x4F524449])
    texts = ORDINARY_TEXTS + tuple(line.text for d in SCRIPT for line in d.lines
                                   if not line.quirk and line.annotated and "[" not in line.text)
    cast = list(CAST)
    dialogues, next_id = [], {split: ORDINARY_FIRST_DIALOGUE for split in SPLIT_SHARES}
    while extra > 0:
        split = str(rng.choice(list(SPLIT_SHARES), p=list(SPLIT_SHARES.values())))
        pair = rng.choice(len(cast), 2, replace=False)
        lines = tuple(
            Line(utt, cast[int(pair[utt % 2])],
                 str(rng.choice(ORDINARY_EMOTIONS, p=ORDINARY_EMOTION_SHARES)), str(rng.choice(texts)))
            for utt in range(min(int(rng.integers(3, 9)), extra))
        )
        dialogues.append(Dialogue(split, next_id[split], int(rng.integers(1, 11)), int(rng.integers(1, 25)), lines))
        next_id[split] += 1
        extra -= len(lines)
    return SCRIPT + tuple(dialogues)


def write(root: Path, seed: int, workers: int | None = None, clips: int | None = None) -> Path:
    """Write the demo MELD.Raw to `root/meld` (with `clips`, a corpus of that many clip files:
    the scripted demo and ordinary dialogues); return that folder."""
    target = Path(root) / "meld"
    if target.exists() and any(target.iterdir()):
        if not (target / "ground_truth.json").is_file():
            raise FileExistsError(f"{target} exists and is not a demo corpus: not overwriting it")
        shutil.rmtree(target)  # an earlier demo corpus: replaced whole, no stale clips left
    for folder in CLIP_FOLDERS.values():
        (target / folder).mkdir(parents=True, exist_ok=True)
    script = script_for(clips, seed)
    jobs = plan_clips(target, seed, script)
    workers = workers or min(len(jobs), os.cpu_count() or 1, 4)
    if workers > 1:
        import multiprocessing

        # spawn: the caller may hold threads (Dagster, torch); forking those is unsafe.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rendered = list(pool.map(render_clip, jobs.values()))
    else:
        rendered = [render_clip(job) for job in jobs.values()]
    rendered_by_id = dict(zip(jobs, rendered))
    for job in jobs.values():
        if job.line.media == "corrupt":
            truncate(Path(job.path))
    write_csvs(target, rendered_by_id, seed, script)
    write_ground_truth(target, seed, jobs, rendered_by_id, script)
    return target


@dataclasses.dataclass(frozen=True)
class ClipJob:
    """Everything `render_clip` needs to write one clip (picklable, for worker processes)."""

    path: str
    line: Line
    size: tuple[int, int]
    fps: Fraction
    speech_channel: int
    noisy_silence: bool  # the other channels carry faint noise (else exact silence)
    listener: str  # "" for one face
    seed: int  # this clip's own random stream (motion, lead-in, noise)
    scene: int  # the dialogue's set: background colours


def clip_id(split: str, dialogue: int, utt: int) -> str:
    return f"{split}/dia{dialogue}_utt{utt}"


def plan_clips(target: Path, seed: int, script: tuple[Dialogue, ...] = SCRIPT) -> dict[str, ClipJob]:
    """One job per clip file to write, keyed by clip id, in script order."""
    rng = np.random.default_rng([seed, 0x4D454C44])
    jobs = {}
    for dialogue in script:
        size, fps = SMALL if dialogue.small else HD
        scene = int(rng.integers(1 << 30))
        for line in dialogue.lines:
            # Drawn for every line, so a quirk's presence does not shift the others' draws.
            channel = int(rng.choice(VOICE_CHANNELS, p=VOICE_WEIGHTS))
            noisy = bool(rng.random() < 0.5)
            two_faces = bool(rng.random() < TWO_FACE_SHARE)
            others = [name for name in CAST if name != line.voice_of]
            listener = line.listener or (others[int(rng.integers(len(others)))] if two_faces else "")
            clip_seed = int(rng.integers(1 << 62))
            if line.media == "missing":
                continue
            name = line.file or f"dia{dialogue.id}_utt{line.utt}.mp4"
            key = clip_id(dialogue.split, dialogue.id, line.utt) if not line.file else f"{dialogue.split}/{Path(name).stem}"
            jobs[key] = ClipJob(
                path=str(target / CLIP_FOLDERS[dialogue.split] / name), line=line, size=size, fps=fps,
                speech_channel=channel, noisy_silence=noisy, listener=listener, seed=clip_seed, scene=scene,
            )
    return jobs


# -- one clip ------------------------------------------------------------------------------------
def spoken_text(text: str) -> str:
    """What is said: the text without stage directions in brackets (also one cut off at the end)."""
    said = re.sub(r"\[[^\]]*(\]|$)|\([^)]*(\)|$)", " ", text)
    return re.sub(r"\s+", " ", said).strip()


def render_clip(job: ClipJob) -> dict:
    """Write one clip; return its ground truth (duration, speech span, face boxes per second)."""
    rng = np.random.default_rng(job.seed)
    member = CAST[job.line.voice_of]
    speech = speak(job.line.voiced, member.voice, MAX_SECONDS - LEAD[1] - TAIL[1])
    lead = float(rng.uniform(*LEAD))
    tail = float(rng.uniform(*TAIL))
    frames = math.ceil((lead + len(speech) / SAMPLE_RATE + tail) * job.fps)
    frames = min(max(frames, math.ceil(MIN_SECONDS * job.fps)), math.floor(MAX_SECONDS * job.fps))
    duration = Fraction(frames) / job.fps
    audio = soundtrack(job, speech, lead, duration, rng)
    side = int(rng.choice((-1, 1))) if job.listener else 0  # the speaker's half of the frame
    people = [Person(job.line.voice_of, job.size, rng, side)]
    if job.listener:
        people.append(Person(job.listener, job.size, rng, -side))
    background = scene_background(job.size, job.scene)
    boxes = encode(Path(job.path), background, people, audio, job.fps, frames)
    seconds = len(speech) / SAMPLE_RATE
    return {
        "duration": round(float(duration), 4),
        "speech": [round(lead, 3), round(lead + seconds, 3)] if job.line.heard else None,
        "faces": [
            {"t": t, "frame": i, "identity": person.identity, "box": box}
            for t, i in sampled_frames(job.fps, frames)
            for person, box in zip(people, boxes[i])
        ],
    }


def speak(text: str, voice: Voice, longest: float) -> np.ndarray:
    """The utterance at 48 kHz as float32 peaking at SPEECH_PEAK, spoken faster if it would
    last longer than `longest` seconds."""
    samples, _ = synthesize(text, voice, sample_rate=SAMPLE_RATE)
    if len(samples) > longest * SAMPLE_RATE:
        rate = math.ceil(voice.rate * len(samples) / (longest * SAMPLE_RATE) * 1.1)
        samples, _ = synthesize(text, dataclasses.replace(voice, rate=rate), sample_rate=SAMPLE_RATE)
    if len(samples) > longest * SAMPLE_RATE:
        raise ValueError(f"{text!r} lasts {len(samples) / SAMPLE_RATE:.1f} s: too long for a demo clip")
    speech = samples.astype(np.float32)
    return speech * (SPEECH_PEAK / max(float(np.abs(speech).max()), 1.0))


def soundtrack(job: ClipJob, speech: np.ndarray, lead: float, duration: Fraction,
               rng: np.random.Generator) -> np.ndarray | None:
    """(6, samples) float32 for the clip's audio stream, or None where it has none."""
    if job.line.track == "none":
        return None
    if job.line.track == "silent":  # exact zeros: the -60 dB noise would still measure as sound
        return np.zeros((CHANNELS, round(duration * SAMPLE_RATE)), np.float32)
    return mix_channels(speech, job.speech_channel, lead, duration, job.noisy_silence, rng)


def mix_channels(speech: np.ndarray, channel: int, lead: float, duration: Fraction, noisy: bool,
                 rng: np.random.Generator) -> np.ndarray:
    """(6, samples) float32: the speech on `channel`, the rest silent or faint noise."""
    total = round(duration * SAMPLE_RATE)
    audio = np.zeros((CHANNELS, total), np.float32)
    if noisy:
        audio += rng.normal(0.0, NOISE_LEVEL, audio.shape).astype(np.float32)
    start = round(lead * SAMPLE_RATE)
    end = min(total, start + len(speech))
    audio[channel, start:end] += speech[: end - start]
    return audio


def sampled_frames(fps: Fraction, frames: int) -> list[tuple[int, int]]:
    """(t, frame index) for t = 0, 1, 2, ... s: the first frame at or after each whole second."""
    out = []
    t = 0
    while (index := math.ceil(t * fps)) < frames:
        out.append((t, index))
        t += 1
    return out


# BT.601 limited range, what FFmpeg assumes for untagged yuv420p: RGB rows -> Y, U, V.
_YUV = np.asarray([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float32) / 255
_YUV_OFFSET = np.asarray([16.0, 128.0, 128.0], np.float32)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB (0..255) -> (..., 3) float32 Y, U, V."""
    return rgb.astype(np.float32) @ _YUV.T + _YUV_OFFSET


def _halve(plane: np.ndarray) -> np.ndarray:
    """Average 2x2 blocks of the first two axes (4:2:0 chroma siting, simplified)."""
    return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) * 0.25


class Picture:
    """One yuv420p frame as a single buffer, the layout `av.VideoFrame.from_ndarray` takes.

    The frames are drawn in YUV directly: converting each 720p RGB frame with swscale cost more
    than encoding it.
    """

    def __init__(self, width: int, height: int):
        assert width % 2 == 0 and height % 4 == 0, (width, height)
        self.buffer = np.empty((height * 3 // 2, width), np.uint8)
        self.y = self.buffer[:height]
        self.u = self.buffer[height: height * 5 // 4].reshape(height // 2, width // 2)
        self.v = self.buffer[height * 5 // 4:].reshape(height // 2, width // 2)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> Picture:
        height, width = rgb.shape[:2]
        picture = cls(width, height)
        yuv = rgb_to_yuv(rgb)
        chroma = _halve(yuv[..., 1:])
        picture.y[:] = np.clip(yuv[..., 0] + 0.5, 0, 255)
        picture.u[:] = np.clip(chroma[..., 0] + 0.5, 0, 255)
        picture.v[:] = np.clip(chroma[..., 1] + 0.5, 0, 255)
        return picture

    def blend(self, sprite: Sprite, left: int, top: int) -> None:
        """Blend `sprite` in with its top-left corner at an even (left, top)."""
        side = sprite.y.shape[0]
        half = side // 2
        for plane, values, alpha, (x, y, n) in (
            (self.y, sprite.y, sprite.alpha, (left, top, side)),
            (self.u, sprite.u, sprite.alpha_half, (left // 2, top // 2, half)),
            (self.v, sprite.v, sprite.alpha_half, (left // 2, top // 2, half)),
        ):
            region = plane[y: y + n, x: x + n]
            region[:] = region + alpha * (values - region) + 0.5


@dataclasses.dataclass(frozen=True)
class Sprite:
    """A face photo at one size, in Y, U, V planes, with its oval alpha at full and half size."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    alpha: np.ndarray
    alpha_half: np.ndarray


@lru_cache(maxsize=64)
def sprite(face: str, side: int) -> Sprite:
    """The photo of `face` resized to side x side (cached: a drifting face revisits its sizes)."""
    from PIL import Image

    rgb = np.asarray(Image.fromarray(faces.load(face)).resize((side, side), Image.BILINEAR))
    yuv = rgb_to_yuv(rgb)
    chroma = _halve(yuv[..., 1:])
    alpha = _oval(side)
    return Sprite(yuv[..., 0], chroma[..., 0].copy(), chroma[..., 1].copy(), alpha, _halve(alpha))


@lru_cache(maxsize=64)
def _oval(side: int) -> np.ndarray:
    """(side, side) float32 alpha: an ellipse with a soft edge, so a face photo sits in the set."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    r = np.sqrt(((x - side / 2) / (0.48 * side)) ** 2 + ((y - side / 2) / (0.5 * side)) ** 2)
    return np.clip((1.0 - r) / 0.08, 0.0, 1.0)


class Person:
    """A face photo moving smoothly over the frame: a slow drift and a gentle change of scale."""

    def __init__(self, identity: str, size: tuple[int, int], rng: np.random.Generator, side: int):
        width, height = size
        self.identity = identity
        self.side = side  # -1 left, 0 centre, 1 right
        photo = faces.load(CAST[identity].face)
        self.face_box = np.asarray(faces.face_box(CAST[identity].face), np.float64) / photo.shape[0]
        share = rng.uniform(0.30, 0.38) if side else rng.uniform(0.38, 0.48)
        self.base = share * height
        self.scale_amp = rng.uniform(0.04, 0.09)
        self.drift = (rng.uniform(0.02, 0.06) * width, rng.uniform(0.02, 0.05) * height)
        self.period = (rng.uniform(3.0, 6.0), rng.uniform(2.5, 5.0), rng.uniform(2.0, 4.0))
        self.phase = rng.uniform(0, 2 * np.pi, 3)
        largest = self.base * (1 + self.scale_amp)
        centre_x = {0: rng.uniform(0.38, 0.62), -1: rng.uniform(0.25, 0.32), 1: rng.uniform(0.68, 0.75)}[side]
        self.centre = (
            float(np.clip(centre_x * width, largest / 2 + self.drift[0], width - largest / 2 - self.drift[0])),
            float(np.clip(rng.uniform(0.42, 0.55) * height, largest / 2 + self.drift[1], height - largest / 2 - self.drift[1])),
        )
        self.frame_size = size

    def place(self, t: float) -> tuple[int, int, int]:
        """(left, top, side) of the photo at time t: even pixels (for 4:2:0 chroma), inside the frame.

        The side moves in steps of 4 px, so that a clip needs few distinct sizes of the photo.
        """
        w = 2 * np.pi / np.asarray(self.period)
        side = 4 * round(self.base * (1 + self.scale_amp * np.sin(w[2] * t + self.phase[2])) / 4)
        cx = self.centre[0] + self.drift[0] * np.sin(w[0] * t + self.phase[0])
        cy = self.centre[1] + self.drift[1] * np.sin(w[1] * t + self.phase[1])
        left = int(np.clip(2 * round((cx - side / 2) / 2), 0, self.frame_size[0] - side))
        top = int(np.clip(2 * round((cy - side / 2) / 2), 0, self.frame_size[1] - side))
        return left, top, side

    def draw(self, picture: Picture, t: float) -> list[float]:
        """Blend the face into `picture`; return the face box [x1, y1, x2, y2] in pixels."""
        left, top, side = self.place(t)
        picture.blend(sprite(CAST[self.identity].face, side), left, top)
        x1, y1, x2, y2 = self.face_box * side
        return [round(left + x1, 1), round(top + y1, 1), round(left + x2, 1), round(top + y2, 1)]


def scene_background(size: tuple[int, int], scene: int) -> np.ndarray:
    """(H, W, 3) uint8: a dialogue's set, a lit wall (vertical gradient), a window and a couch."""
    width, height = size
    rng = np.random.default_rng(scene)
    top, bottom = rng.uniform(60, 200, 3), rng.uniform(20, 120, 3)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    frame = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
    wx, wy = int(rng.uniform(0.05, 0.6) * width), int(rng.uniform(0.05, 0.2) * height)
    frame[wy: wy + height // 3, wx: wx + width // 3] = rng.uniform(170, 240, 3)  # window
    frame[int(0.78 * height):, :] = rng.uniform(30, 110, 3)  # couch
    return frame.astype(np.uint8)


def encode(path: Path, background: np.ndarray, people: list[Person], audio: np.ndarray | None,
           fps: Fraction, frames: int) -> list[list[list[float]]]:
    """Write the mp4 (H.264 + 5.1 AAC, interleaved; no audio stream where `audio` is None);
    return the face boxes of every frame."""
    import av

    height, width = background.shape[:2]
    backdrop = Picture.from_rgb(background)
    picture = Picture(width, height)
    boxes = []
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # One thread: x264's output then depends on nothing but its input (byte-identical files).
        video.options = {"preset": "veryfast", "crf": "27", "threads": "1"}
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout=LAYOUT)
            # No intensity or mid/side stereo: the silent channel of a pair stays silent. The fast
            # coder costs a quarter of the default's time; at 256 kb/s (spent almost all on the one
            # voiced channel) Whisper hears it as well as the default coder at 192 kb/s.
            sound.options = {"aac_is": "0", "aac_ms": "0", "aac_pns": "0", "aac_coder": "fast"}
            sound.bit_rate = 256_000
        sent = 0
        for i in range(frames):
            picture.buffer[:] = backdrop.buffer
            boxes.append([person.draw(picture, float(i / fps)) for person in people])
            frame = av.VideoFrame.from_ndarray(picture.buffer, format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / fps
            container.mux(video.encode(frame))
            if audio is None:
                continue
            until = audio.shape[1] if i == frames - 1 else round((i + 1) / fps * SAMPLE_RATE)
            while sent < until:
                chunk = np.ascontiguousarray(audio[:, sent: min(until, sent + 1024)])
                samples = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=LAYOUT)
                samples.sample_rate = SAMPLE_RATE
                samples.pts = sent
                samples.time_base = Fraction(1, SAMPLE_RATE)
                container.mux(sound.encode(samples))
                sent += chunk.shape[1]
        container.mux(video.encode())
        if audio is not None:
            container.mux(sound.encode())
    return boxes


def truncate(path: Path) -> None:
    """Cut the clip's tail, moov atom and all, as a broken download leaves it."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size * 2 // 5)


# -- annotations -------------------------------------------------------------------------------
def mojibake(text: str) -> str:
    """`text` as it reads when its UTF-8 bytes are decoded as cp1252 ("I’m" -> "Iâ€™m")."""
    return text.encode("utf-8").decode("cp1252")


def hundredths_end(start: float, end: float, fraction: float) -> float:
    """The end nearest `end` (and after `start`) whose fraction of a second is `fraction`."""
    whole = math.floor(end)
    candidates = [whole + k + fraction for k in (-1, 0, 1) if whole + k + fraction > start]
    return min(candidates, key=lambda c: abs(c - end))


def timestamp(seconds: float, stamp: str = "", end: bool = False) -> str:
    """SRT-style `HH:MM:SS,mmm`, or MELD's variants: one-digit hour, two-digit milliseconds."""
    ms = round(seconds * 1000)
    if stamp == "two_digit_ms" and end:
        ms = round(seconds * 100) * 10
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    hour = f"{hours}" if stamp == "one_digit_hour" else f"{hours:02d}"
    fraction = f"{millis // 10:02d}" if stamp == "two_digit_ms" and end else f"{millis:03d}"
    return f"{hour}:{minutes:02d}:{secs:02d},{fraction}"


def write_csvs(target: Path, clips: dict[str, dict], seed: int, script: tuple[Dialogue, ...] = SCRIPT) -> None:
    """The three `*_sent_emo.csv` files: official columns, MELD's quoting, episode timestamps."""
    rng = np.random.default_rng([seed, 0x435356])
    rows: dict[str, list[list]] = {split: [] for split in CSV_NAMES}
    serial = {split: 0 for split in CSV_NAMES}
    for dialogue in script:
        clock = float(rng.uniform(60, 40 * 60))  # where the scene starts in its episode
        for line in dialogue.lines:
            key = clip_id(dialogue.split, dialogue.id, line.utt)
            length = clips[key]["duration"] if key in clips else 2.0
            start = clock
            clock += length + float(rng.uniform(0.1, 0.6))
            if not line.annotated:
                continue
            end = start + (length if line.span is None else line.span)
            if line.stamp == "two_digit_ms":
                end = hundredths_end(start, end, TWO_DIGIT_MS)
            if (dialogue.split, dialogue.id, line.utt) != REPEATED_SR_NO:
                serial[dialogue.split] += 1
            rows[dialogue.split].append([
                serial[dialogue.split],
                mojibake(line.text) if line.mojibake else line.text,
                line.speaker, line.emotion, line.sentiment or SENTIMENT[line.emotion],
                dialogue.id, line.utt, dialogue.season, dialogue.episode,
                timestamp(start, line.stamp), timestamp(end, line.stamp, end=True),
            ])
    for split, name in CSV_NAMES.items():
        with (target / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n" if split in CRLF_SPLITS else "\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows[split])


def write_ground_truth(target: Path, seed: int, jobs: dict[str, ClipJob], clips: dict[str, dict],
                       script: tuple[Dialogue, ...] = SCRIPT) -> None:
    """`ground_truth.json`: the cast, every clip's speaker, text, channel and faces, the quirks."""
    truth_clips = {}
    for key, job in jobs.items():
        if job.line.media == "corrupt":
            continue  # unreadable on purpose: listed under quirks only
        rendered = clips[key]
        truth_clips[key] = {
            "file": str(Path(job.path).relative_to(target)),
            "annotated": job.line.annotated,
            "speaker": job.line.voice_of,
            "csv_speaker": job.line.speaker,
            "text": job.line.text,
            "spoken": job.line.heard,
            "emotion": job.line.emotion,
            "audio": job.line.track,
            "speech_channel": job.speech_channel if job.line.heard else None,
            "duration": rendered["duration"],
            "speech": rendered["speech"],
            "fps": round(float(job.fps), 3),
            "size": list(job.size),
            "faces": rendered["faces"],
            "two_faces": bool(job.listener),
        }
    quirks = {}
    for dialogue in script:
        if dialogue.quirk:
            quirks[f"{dialogue.split}/dia{dialogue.id}"] = dialogue.quirk
        for line in dialogue.lines:
            if line.quirk:
                quirks[line.file or clip_id(dialogue.split, dialogue.id, line.utt)] = line.quirk
    quirks.update(FILE_QUIRKS)
    truth = {
        "seed": seed,
        "speakers": {name: {"voice": m.voice.label(), "face": m.face} for name, m in CAST.items()},
        "clips": truth_clips,
        "quirks": quirks,
    }
    (target / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
