"""Demo unimodal corpora, each in its own published layout, so `make demo` runs every adapter.

`write(root, seed)` writes, under `root`:

- `ravdess/Actor_0N/03-01-EE-01-01-01-0N.wav`: four actors (odd male, even female, as in RAVDESS)
  speaking statement 01 in all eight emotions at normal intensity, 48 kHz mono; one audio-video
  clip `01-01-03-01-01-01-01.mp4` showing a real face; planted: neutral at strong intensity and an
  unknown emotion code 09 (both `malformed_row`).
- `cremad/AudioWAV/100N_SSS_EEE_LL.wav`: four actors in CREMA-D's six emotions, 16 kHz mono;
  planted: a file that is not audio (`corrupt_media`).
- `ckplus/cohn-kanade-images/S50N/00K/S50N_00K_0000000F.png` with `Emotion/.../*_emotion.txt`: five
  subjects (real public-domain faces), three labelled five-frame sequences each, 640x490 grey;
  planted: a sequence without an Emotion file (`no_annotation`) and an Emotion file without
  frames (`missing_media`). `write_ckplus48` writes the same peak frames in the CK+48 variant
  (`<emotion>/S501_001_00000005.png`, 48x48 grey face crops).
- `fer2013/fer2013.csv` (`emotion,pixels,Usage`): 48x48 grey crops of the same faces in the
  three Usage splits; planted: a row with 2303 pixels (`malformed_row`) and a blank image
  (`corrupt_media`).
- `iemocap/Session{1,2}/`: one improvised dialogue per session, twelve turns between the
  session's two actors, with EmoEvaluation, transcriptions and one 16 kHz wav per turn; planted:
  a turn with no consensus (`xxx`: `ambiguous_label`), an evaluated turn without its wav
  (`missing_media`), a wav without an evaluation (`no_annotation`), a turn missing from the
  transcription (no text).

Speech is synthetic (espeak-ng, `speech.py`), its pitch, range and rate shifted per emotion; faces
are the real public-domain photographs of `faces.py`. Each corpus root gets a `ground_truth.json`
listing its items and the status each planted quirk should get. The same seed writes the same files.
"""

from __future__ import annotations

import dataclasses
import io
import json
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipelines.demo import faces
from pipelines.demo.speech import Voice, synthesize

CORPORA = ("ravdess", "cremad", "ckplus", "fer2013", "iemocap")

# Prosody per emotion: (pitch, pitch range, rate) added to the voice's; strong intensity doubles it.
PROSODY = {
    "neutral": (0, 0, 0), "calm": (-4, -15, -20), "happy": (10, 20, 15), "sad": (-10, -20, -35),
    "angry": (6, 25, 25), "fearful": (15, 10, 20), "disgust": (-6, 5, -15), "surprised": (20, 30, 5),
}


def emotional(voice: Voice, emotion: str, strength: int = 1) -> Voice:
    pitch, spread, rate = (strength * d for d in PROSODY[emotion])
    return dataclasses.replace(
        voice, pitch=int(np.clip(voice.pitch + pitch, 0, 100)),
        pitch_range=int(np.clip(voice.pitch_range + spread, 0, 100)), rate=int(np.clip(voice.rate + rate, 80, 450)),
    )


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """int16 mono samples as a 16-bit PCM wav file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()


def speak_to(path: Path, text: str, voice: Voice, rate: int, seed: int) -> None:
    samples, _ = synthesize(text, voice, sample_rate=rate, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(samples, rate))


def write_truth(target: Path, items: list[str], planted: dict[str, str]) -> None:
    truth = {"items": sorted(items), "planted": dict(sorted(planted.items()))}
    (target / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")


# -- RAVDESS -------------------------------------------------------------------------------------
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
RAVDESS_VOICES = {1: Voice("m1", 35, 45, 160), 2: Voice("f2", 62, 55, 165), 3: Voice("m4", 45, 50, 170),
                  4: Voice("f4", 72, 60, 155)}
RAVDESS_FACE = "barack_obama"  # actor 01 in the audio-video clip
RAVDESS_RATE = 48_000
RAVDESS_STATEMENT = "Kids are talking by the door"


def write_ravdess(target: Path, seed: int) -> None:
    items, planted = [], {}
    for actor, voice in RAVDESS_VOICES.items():
        for e, emotion in enumerate(RAVDESS_EMOTIONS, 1):
            code = f"03-01-{e:02d}-01-01-01-{actor:02d}"
            speak_to(target / f"Actor_{actor:02d}" / f"{code}.wav", RAVDESS_STATEMENT,
                     emotional(voice, emotion), RAVDESS_RATE, seed + actor * 10 + e)
            items.append(code)
    neutral_strong = "03-01-01-02-01-01-01"  # RAVDESS has no strong neutral
    speak_to(target / "Actor_01" / f"{neutral_strong}.wav", RAVDESS_STATEMENT, RAVDESS_VOICES[1], RAVDESS_RATE, seed)
    unknown = "03-01-09-01-01-01-02"  # emotion codes stop at 08
    speak_to(target / "Actor_02" / f"{unknown}.wav", RAVDESS_STATEMENT, RAVDESS_VOICES[2], RAVDESS_RATE, seed)
    planted.update({neutral_strong: "malformed_row", unknown: "malformed_row"})
    clip = "01-01-03-01-01-01-01"
    write_talking_face(target / "Actor_01" / f"{clip}.mp4", RAVDESS_FACE,
                       emotional(RAVDESS_VOICES[1], "happy"), seed)
    items.append(clip)
    write_truth(target, items, planted)


def write_talking_face(path: Path, identity: str, voice: Voice, seed: int,
                       size: tuple[int, int] = (640, 360), fps: int = 25) -> None:
    """An H.264 + AAC clip of `identity`'s photograph, nodding slightly, saying the statement."""
    import av
    from PIL import Image

    speech, rate = synthesize(RAVDESS_STATEMENT, voice, sample_rate=RAVDESS_RATE, seed=seed)
    audio = np.concatenate([np.zeros(rate // 4, np.int16), speech, np.zeros(rate // 4, np.int16)])
    frames = int(np.ceil(len(audio) / rate * fps))
    width, height = size
    photo = Image.fromarray(np.ascontiguousarray(faces.load(identity))).resize((240, 240), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "25", "threads": "1"}
        sound = container.add_stream("aac", rate=rate, layout="mono")
        sent = 0
        for i in range(frames):
            canvas = Image.new("RGB", size, (96, 104, 112))
            dy = int(6 * np.sin(2 * np.pi * i / fps))
            canvas.paste(photo, ((width - 240) // 2, (height - 240) // 2 + dy))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            until = len(audio) if i == frames - 1 else min(len(audio), round((i + 1) / fps * rate))
            while sent < until:
                chunk = audio[sent:min(until, sent + 1024)]
                samples = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                samples.sample_rate = rate
                samples.pts = sent
                samples.time_base = Fraction(1, rate)
                container.mux(sound.encode(samples))
                sent += len(chunk)
        container.mux(video.encode())
        container.mux(sound.encode())


# -- CREMA-D -------------------------------------------------------------------------------------
CREMAD_ACTORS = {1001: Voice("m2", 40, 50, 165), 1002: Voice("f1", 65, 55, 170), 1003: Voice("m6", 50, 40, 160),
                 1004: Voice("f5", 70, 65, 175)}
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMAD_SENTENCES = {"IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
                    "DFA": "Don't forget a jacket", "TSI": "The surface is slick",
                    "WSI": "We'll stop in a couple of minutes", "IOM": "I'm on my way to the meeting"}
CREMAD_LEVELS = ("XX", "LO", "MD", "HI")
CREMAD_RATE = 16_000


def write_cremad(target: Path, seed: int) -> None:
    folder = target / "AudioWAV"
    items, planted = [], {}
    sentences = list(CREMAD_SENTENCES)
    for a, (actor, voice) in enumerate(CREMAD_ACTORS.items()):
        for e, (code, emotion) in enumerate(CREMAD_EMOTIONS.items()):
            sentence = sentences[(a + e) % len(sentences)]
            level = "XX" if code == "NEU" else CREMAD_LEVELS[(a + e) % len(CREMAD_LEVELS)]
            name = f"{actor}_{sentence}_{code}_{level}"
            strength = {"XX": 1, "LO": 1, "MD": 1, "HI": 2}[level]
            speak_to(folder / f"{name}.wav", CREMAD_SENTENCES[sentence], emotional(voice, emotion, strength),
                     CREMAD_RATE, seed + actor + e)
            items.append(name)
    corrupt = "1004_IWW_SAD_XX"
    (folder / f"{corrupt}.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEdata" + bytes(range(16)))
    planted[corrupt] = "corrupt_media"
    write_truth(target, items, planted)


# -- CK+ -------------------------------------------------------------------------------------------
CKPLUS_SIZE = (640, 490)
CKPLUS_CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sadness", 7: "surprise"}
CKPLUS_FRAMES = 5
CKPLUS_FACE_SIDE = 260


def grey(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114).astype(np.uint8)


def ckplus_frame(identity: str, photo: int, step: int) -> np.ndarray:
    """A 640x490 grey frame: the face a little larger and turned a little further each step."""
    from PIL import Image

    width, height = CKPLUS_SIZE
    side = CKPLUS_FACE_SIDE + 6 * step
    face = Image.fromarray(np.ascontiguousarray(faces.load(identity, photo))).resize((side, side), Image.Resampling.LANCZOS)
    face = face.rotate(1.5 * step, resample=Image.Resampling.BICUBIC, fillcolor=(90, 90, 90))
    canvas = Image.new("RGB", CKPLUS_SIZE, (90, 90, 90))
    canvas.paste(face, ((width - side) // 2, (height - side) // 2 - 10))
    return grey(np.asarray(canvas))


def write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


def ckplus_sequences() -> list[tuple[str, str, str, int, int]]:
    """(subject, sequence, identity, photo, emotion code) of every labelled demo sequence."""
    codes = list(CKPLUS_CODES)
    return [(f"S{501 + s}", f"{q + 1:03d}", identity, q % faces.photos(identity), codes[(3 * s + q) % len(codes)])
            for s, identity in enumerate(faces.IDENTITIES) for q in range(3)]


def ckplus48_crop(identity: str, photo: int, step: int) -> np.ndarray:
    """The 48x48 grey face crop of a demo CK+ frame, as CK+48 cuts its peak frames."""
    from PIL import Image

    width, height = CKPLUS_SIZE
    side = CKPLUS_FACE_SIDE + 6 * step
    scale = side / faces.load(identity, photo).shape[0]
    x1, y1, x2, y2 = faces.face_box(identity, photo)
    left, top = (width - side) // 2, (height - side) // 2 - 10
    cx, cy = left + scale * (x1 + x2) / 2, top + scale * (y1 + y2) / 2
    half = scale * max(x2 - x1, y2 - y1) / 2
    frame = Image.fromarray(ckplus_frame(identity, photo, step))
    box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    return np.asarray(frame.crop(box).resize((48, 48), Image.Resampling.LANCZOS))


def write_ckplus48(target: Path, seed: int) -> None:
    """The CK+48 variant of the demo CK+: `<emotion>/S501_001_00000005.png`, the last three frames
    of each labelled sequence as 48x48 grey face crops."""
    items = []
    for subject, sequence, identity, photo, code in ckplus_sequences():
        for f in range(CKPLUS_FRAMES - 2, CKPLUS_FRAMES + 1):
            stem = f"{subject}_{sequence}_{f:08d}"
            write_png(target / CKPLUS_CODES[code] / f"{stem}.png", ckplus48_crop(identity, photo, f))
            items.append(stem)
    write_truth(target, items, {})


def write_ckplus(target: Path, seed: int) -> None:
    images, emotion_root = target / "cohn-kanade-images", target / "Emotion"
    items, planted = [], {}
    for subject, sequence, identity, photo, code in ckplus_sequences():
        stems = []
        for f in range(1, CKPLUS_FRAMES + 1):
            stem = f"{subject}_{sequence}_{f:08d}"
            write_png(images / subject / sequence / f"{stem}.png", ckplus_frame(identity, photo, f))
            stems.append(stem)
        label = emotion_root / subject / sequence / f"{stems[-1]}_emotion.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"   {code:.7e}\n")
        items.extend(stems[-3:])
    unlabelled = "S501_004"
    for f in range(1, 4):
        write_png(images / "S501" / "004" / f"S501_004_{f:08d}.png", ckplus_frame(faces.IDENTITIES[0], 0, f))
    orphan = emotion_root / "S505" / "009" / "S505_009_00000012_emotion.txt"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_text(f"   {5:.7e}\n")
    planted.update({unlabelled: "no_annotation", "S505_009_00000012": "missing_media"})
    write_truth(target, items, planted)


# -- FER2013 ---------------------------------------------------------------------------------------
FER_USAGE = ("Training",) * 5 + ("PublicTest", "PrivateTest")
FER_ROWS = 42


def fer_crop(identity: str, photo: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 grey crop around the face box, jittered, flipped half the time, relit."""
    from PIL import Image

    x1, y1, x2, y2 = faces.face_box(identity, photo)
    side = max(x2 - x1, y2 - y1) * rng.uniform(0.95, 1.1)
    cx, cy = (x1 + x2) / 2 + rng.uniform(-4, 4), (y1 + y2) / 2 + rng.uniform(-4, 4)
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    image = Image.fromarray(np.ascontiguousarray(faces.load(identity, photo))).crop(tuple(map(round, box)))
    pixels = grey(np.asarray(image.resize((48, 48), Image.Resampling.LANCZOS))).astype(np.float32)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return np.clip(pixels * rng.uniform(0.8, 1.15) + rng.uniform(-15, 15), 0, 255).astype(np.uint8)


def write_fer2013(target: Path, seed: int) -> None:
    rng = np.random.default_rng(seed + 2013)
    lines = ["emotion,pixels,Usage"]
    for row in range(FER_ROWS):
        identity = faces.IDENTITIES[row % len(faces.IDENTITIES)]
        pixels = fer_crop(identity, row % faces.photos(identity), rng)
        lines.append(f"{row % 7},{' '.join(map(str, pixels.ravel()))},{FER_USAGE[row % len(FER_USAGE)]}")
    malformed = ' '.join(['128'] * 2303)
    lines.append(f"3,{malformed},Training")
    lines.append(f"6,{' '.join(['0'] * 2304)},PublicTest")
    target.mkdir(parents=True, exist_ok=True)
    (target / "fer2013.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_truth(target, [f"{r:05d}" for r in range(FER_ROWS)],
                {f"{FER_ROWS:05d}": "malformed_row", f"{FER_ROWS + 1:05d}": "corrupt_media"})


# -- IEMOCAP -----------------------------------------------------------------------------------------
IEMOCAP_VOICES = {"F": Voice("f3", 66, 60, 165), "M": Voice("m5", 40, 50, 160)}
IEMOCAP_LINES = (
    "Excuse me.", "Do you have your forms?", "Yeah, I filled them out already.",
    "You need to go to the other line.", "I waited here for an hour!", "I know, I am sorry about that.",
    "This is ridiculous.", "Let me see what I can do.", "Thank you, that would be great.",
    "I got the job, can you believe it?", "That is wonderful news!", "I really miss her.",
)
IEMOCAP_LABELS = ("neu", "neu", "hap", "neu", "ang", "sad", "fru", "neu", "exc", "exc", "sur", "sad")
IEMOCAP_EMOTION = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad", "fru": "disgust",
                   "exc": "happy", "sur": "surprised", "xxx": "neutral"}
IEMOCAP_VAD = {"neu": (3.0, 2.5, 3.0), "hap": (4.0, 3.5, 3.0), "ang": (1.5, 4.0, 4.0), "sad": (1.5, 2.0, 2.0),
               "fru": (2.0, 3.5, 3.5), "exc": (4.5, 4.0, 3.5), "sur": (3.5, 4.0, 2.5), "xxx": (2.5, 3.0, 3.0)}
IEMOCAP_RATE = 16_000


def write_iemocap(target: Path, seed: int) -> None:
    items, planted = [], {}
    for session in (1, 2):
        lead = "F" if session == 1 else "M"
        dialog = f"Ses{session:02d}{lead}_impro01"
        base = target / f"Session{session}"
        evaluation, transcript = [f"% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""], []
        clock, counts = 2.0, {"F": 0, "M": 0}
        for t, text in enumerate(IEMOCAP_LINES):
            gender = "FM"[t % 2] if lead == "F" else "MF"[t % 2]
            turn = f"{dialog}_{gender}{counts[gender]:03d}"
            counts[gender] += 1
            label = "xxx" if (session, t) == (2, 3) else IEMOCAP_LABELS[t]
            voice = emotional(IEMOCAP_VOICES[gender], IEMOCAP_EMOTION[label])
            samples, _ = synthesize(text, voice, sample_rate=IEMOCAP_RATE, seed=seed + 100 * session + t)
            start, end = clock, clock + len(samples) / IEMOCAP_RATE
            clock = end + 0.8
            v, a, d = IEMOCAP_VAD[label]
            evaluation += [f"[{start:.4f} - {end:.4f}]\t{turn}\t{label}\t[{v:.4f}, {a:.4f}, {d:.4f}]",
                           f"C-E1:\t{IEMOCAP_EMOTION[label].capitalize()};\t()", ""]
            missing_wav = (session, t) == (2, len(IEMOCAP_LINES) - 1)
            if not missing_wav:
                wav = base / "sentences" / "wav" / dialog / f"{turn}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                wav.write_bytes(wav_bytes(samples, IEMOCAP_RATE))
            if (session, t) != (1, 5):
                transcript.append(f"{turn} [{start:08.4f}-{end:08.4f}]: {text}")
            if missing_wav:
                planted[turn] = "missing_media"
            elif label == "xxx":
                planted[turn] = "ambiguous_label"
            else:
                items.append(turn)
        for sub, lines in (("EmoEvaluation", evaluation), ("transcriptions", transcript)):
            path = base / "dialog" / sub / f"{dialog}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    unevaluated = "Ses01F_impro01_F099"
    samples, _ = synthesize("Hello?", IEMOCAP_VOICES["F"], sample_rate=IEMOCAP_RATE, seed=seed)
    (target / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / f"{unevaluated}.wav").write_bytes(
        wav_bytes(samples, IEMOCAP_RATE))
    planted[unevaluated] = "no_annotation"
    write_truth(target, items, planted)


WRITERS = {"ravdess": write_ravdess, "cremad": write_cremad, "ckplus": write_ckplus,
           "fer2013": write_fer2013, "iemocap": write_iemocap}


def write(root: Path, seed: int) -> None:
    """Write every demo unimodal corpus under `root/<name>`."""
    for name in CORPORA:
        target = Path(root) / name
        target.mkdir(parents=True, exist_ok=True)
        WRITERS[name](target, seed)
