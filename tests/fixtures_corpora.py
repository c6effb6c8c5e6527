"""Fixture trees of the audio, face and dialogue corpora, each in its corpus's exact published
layout, with tiny media (tones, small images) and planted faults. Each builder names where its
layout is documented and returns the tree's root.

The media are made here, not copied: tones stand in for speech (the readers only read headers),
small grey images for faces. Tests that need real speech or real faces read ../shared/data.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

TONE_RATE = 16_000


def tone_wav(seconds: float = 0.6, rate: int = TONE_RATE, pitch: float = 220.0) -> bytes:
    """A 16-bit mono wav of a syllable-like tone: 220 Hz and harmonics, rising and falling."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * 3 * t)  # three "syllables"
    samples = (0.3 * voiced / 2.3 * envelope * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


NOT_MEDIA = b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(32))  # a header and nothing decodable


def put(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def grey_image(side: int = 48, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A small grey image in `fmt` (PNG, JPEG, TIFF) with some structure."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    pixels = 128 + 60 * np.sin(6 * x + seed) * np.cos(4 * y) + rng.normal(0, 8, (side, side))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def video_only_mp4(path: Path, side: int = 64, frames: int = 10) -> Path:
    """A short silent H.264 clip (RAVDESS's video-only files have no audio stream)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((side, side, 3), 40 + 10 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


# -- audio corpora ---------------------------------------------------------------------------------
def cremad_tree(root: Path) -> Path:
    """CREMA-D: `AudioWAV/ActorID_Sentence_Emotion_Level.wav` (github.com/CheyneyComputerScience/
    CREMA-D, README "Filename labeling conventions"); AudioMP3/ and VideoFlash/ beside it."""
    for name in ("1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1001_TIE_NEU_XX", "1002_DFA_SAD_LO",
                 "1002_IWW_FEA_MD", "1002_WSI_DIS_XX"):
        put(root, f"AudioWAV/{name}.wav", tone_wav())
    put(root, "AudioWAV/1003_XYZ_ANG_XX.wav", tone_wav())  # unknown sentence code
    put(root, "AudioWAV/1003_DFA_BOR_XX.wav", tone_wav())  # unknown emotion code
    put(root, "AudioWAV/1003_DFA_ANG_ZZ.wav", tone_wav())  # unknown level
    put(root, "AudioWAV/1003_ITS_SAD_XX.wav", NOT_MEDIA)  # will not decode
    put(root, "AudioWAV/1003_TSI_HAP_XX.wav", b"")  # empty file
    put(root, "AudioMP3/1001_DFA_ANG_XX.mp3", b"not read")
    put(root, "VideoFlash/1001_DFA_ANG_XX.flv", b"not read")
    return root


def ravdess_tree(root: Path) -> Path:
    """RAVDESS: `Actor_NN/MM-VV-EE-II-SS-RR-AA.wav|mp4` (zenodo.org/record/1188976, "File naming
    convention": modality, vocal channel, emotion, intensity, statement, repetition, actor)."""
    for name in ("03-01-01-01-01-01-01", "03-01-05-02-01-02-01", "03-01-02-01-02-01-01",  # neutral, angry strong, calm
                 "03-02-03-01-01-01-01",  # song, happy
                 "03-01-08-01-01-01-02"):  # surprised, actor 02 in Actor_01/ (misfiled)
        put(root, f"Actor_01/{name}.wav", tone_wav())
    put(root, "Actor_02/03-01-04-01-01-01-02.wav", tone_wav())
    put(root, "Actor_02/03-01-01-02-01-01-02.wav", tone_wav())  # strong neutral: not in RAVDESS
    put(root, "Actor_02/03-02-07-01-01-01-02.wav", tone_wav())  # song has no disgust
    put(root, "Actor_02/03-01-09-01-01-01-02.wav", tone_wav())  # emotion codes stop at 08
    put(root, "Actor_02/03-01-06-01-01-01-02_audio.wav", tone_wav())  # suffix on an audio-only code
    put(root, "Actor_02/01-01-06-01-01-01-02_audio.wav", tone_wav())  # audio out of an AV clip
    put(root, "Actor_02/01-01-06-01-01-01-02.wav", tone_wav())  # its twin, no suffix
    put(root, "Actor_02/03-01-04-02-01-01-02.wav", NOT_MEDIA)
    put(root, "Actor_02/song.wav", tone_wav())  # not the seven fields
    video_only_mp4(root / "Actor_02" / "02-01-04-01-01-01-02.mp4")
    put(root, "Actor_02/readme.txt", b"not media")
    return root


def savee_tree(root: Path) -> Path:
    """SAVEE: the flat copy `ALL/DC_a01.wav` (Kaggle "surrey-audiovisual-expressed-emotion-savee")
    and the original `AudioData/DC/a01.wav` (kahlan.eps.surrey.ac.uk/savee/Database.html: emotion
    codes a, d, f, h, n, sa, su, then the sentence number)."""
    for name in ("DC_a01", "DC_sa01", "DC_su15", "JE_n30", "JK_d03", "JK_f02", "KL_h07"):
        put(root, f"ALL/{name}.wav", tone_wav())
    put(root, "ALL/DC_x01.wav", tone_wav())  # unknown emotion code
    put(root, "ALL/DC-a01.wav", tone_wav())  # not SPEAKER_CODEnn
    put(root, "AudioData/KL/sa02.wav", tone_wav())
    put(root, "AudioData/KL/su03.wav", NOT_MEDIA)
    return root


def tess_tree(root: Path) -> Path:
    """TESS: `OAF_angry/OAF_back_angry.wav` (Dupuis & Pichora-Fuller, University of Toronto,
    tspace.library.utoronto.ca/handle/1807/24487); folder names are capitalised differently in
    the common copies (`OAF_Fear`, `YAF_pleasant_surprised`), and one copy nests the tree twice."""
    base = "TESS Toronto emotional speech set data"
    for folder, name in (("OAF_angry", "OAF_back_angry"), ("OAF_Fear", "OAF_bar_fear"),
                         ("OAF_Pleasant_surprise", "OAF_bite_ps"), ("YAF_happy", "YAF_dog_happy"),
                         ("YAF_pleasant_surprised", "YAF_chalk_ps"), ("YAF_sad", "YAF_Dog_Sad"),
                         ("YAF_neutral", "YAF_germ_neutral"), ("OAF_disgust", "OAF_back_disgust")):
        put(root, f"{base}/{folder}/{name}.wav", tone_wav())
    put(root, f"{base}/{base}/OAF_angry/OAF_back_angry.wav", tone_wav())  # the nested copy
    put(root, f"{base}/OAF_angry/OAF_bean_bored.wav", tone_wav())  # not a TESS emotion
    return root


def emodb_tree(root: Path) -> Path:
    """EmoDB: `wav/03a01Fa.wav` (emodb.bilderbar.info/docu: speaker 03..16, text a01..b10,
    emotion W L E A F T N, version a..)."""
    for name in ("03a01Fa", "03a01Wa", "08b02Tb", "09a05Ac", "10b09Ea", "11a02Nc", "16b10La"):
        put(root, f"wav/{name}.wav", tone_wav())
    put(root, "wav/12a01Xa.wav", tone_wav())  # unknown emotion letter
    put(root, "wav/13c01Fa.wav", tone_wav())  # unknown text code
    put(root, "wav/14a01Fa.wav", NOT_MEDIA)
    put(root, "silb/03a01Fa.lab", b"not read")
    return root


# -- face corpora ----------------------------------------------------------------------------------
def jaffe_tree(root: Path) -> Path:
    """JAFFE: `jaffe/KA.AN1.39.tiff` (zenodo.org/record/3451524, README: subject, expression and
    its take, image number; AN DI FE HA NE SA SU)."""
    for i, name in enumerate(("KA.AN1.39", "KA.HA2.30", "KL.SU1.164", "KM.NE3.55", "NA.DI1.214",
                              "TM.FE2.191", "UY.SA1.140")):
        put(root, f"jaffe/{name}.tiff", grey_image(64, i, "TIFF"))
    put(root, "jaffe/YM.XX1.60.tiff", grey_image(64, 9, "TIFF"))  # unknown expression code
    put(root, "jaffe/KA.AN2.40.tiff", b"II*\x00garbage")  # a TIFF header and nothing else
    put(root, "jaffe/README", b"not an image")
    return root


def ckplus_tree(root: Path) -> Path:
    """CK+ as distributed: `cohn-kanade-images/S005/001/S005_001_00000001.png` and
    `Emotion/S005/001/S005_001_00000011_emotion.txt` holding `   3.0000000e+00` (Lucey et al.
    2010, the CK+ archive's README; codes 1 anger .. 7 surprise, only on validated sequences)."""
    def sequence(subject: str, number: str, frames: int) -> list[str]:
        stems = [f"{subject}_{number}_{f:08d}" for f in range(1, frames + 1)]
        for f, stem in enumerate(stems):
            put(root, f"cohn-kanade-images/{subject}/{number}/{stem}.png", grey_image(32, f))
        return stems

    def emotion(stem: str, text: str) -> None:
        subject, number = stem.split("_")[:2]
        put(root, f"Emotion/{subject}/{number}/{stem}_emotion.txt", text.encode())

    emotion(sequence("S005", "001", 11)[-1], "   3.0000000e+00\n")  # disgust
    emotion(sequence("S010", "002", 6)[-1], "   2.0000000e+00\n")  # contempt
    emotion(sequence("S011", "004", 2)[-1], "   7.0000000e+00\n")  # surprise, only two frames
    sequence("S010", "001", 4)  # no Emotion file
    emotion("S022_003_00000030", "   5.0000000e+00\n")  # an Emotion file without frames
    emotion(sequence("S026", "002", 3)[-1], "   9.0000000e+00\n")  # unknown code
    emotion(sequence("S026", "003", 3)[-1], "happy\n")  # not a code
    put(root, "cohn-kanade-images/S005/001/.DS_Store", b"\0")
    return root


def ckplus48_tree(root: Path) -> Path:
    """CK+48: `CK+48/<emotion>/S010_004_00000017.png`, 48x48 crops of the last three frames of
    each labelled sequence (github.com/WuJie1010/Facial-Expression-Recognition.Pytorch, CK+48/)."""
    names = {"anger": ["S010_004_00000017", "S010_004_00000018"], "contempt": ["S138_008_00000007"],
             "happy": ["S011_006_00000011"], "surprise": ["S014_001_00000028"]}
    for folder, stems in names.items():
        for i, stem in enumerate(stems):
            put(root, f"CK+48/{folder}/{stem}.png", grey_image(48, i))
    put(root, "CK+48/bored/S015_001_00000010.png", grey_image(48, 5))  # not a CK+ emotion
    put(root, "CK+48/fear/img_001.png", grey_image(48, 6))  # not S###_###_########
    return root


def rafdb_tree(root: Path) -> Path:
    """RAF-DB basic: `basic/EmoLabel/list_patition_label.txt` (sic; `train_00001.jpg 5`) and
    `basic/Image/aligned/train_00001_aligned.jpg` (whdeng.cn/RAF/model1.html, README of the basic
    set: 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral)."""
    labels = [("train_00001.jpg", "5"), ("train_00002.jpg", "4"), ("train_00003.jpg", "1"),
              ("test_0001.jpg", "7"), ("test_0002.jpg", "6"),
              ("train_00004.jpg", "8"),  # unknown code
              ("train_00005.jpg", "3")]  # its image is missing
    lines = [f"{name} {code}" for name, code in labels] + ["train_00006.jpg", ""]  # a line without a label
    put(root, "basic/EmoLabel/list_patition_label.txt", ("\n".join(lines) + "\n").encode())
    for i, (name, _) in enumerate(labels[:6]):
        put(root, f"basic/Image/aligned/{Path(name).stem}_aligned.jpg", grey_image(100, i, "JPEG"))
    put(root, "basic/Image/aligned/test_0003_aligned.jpg", grey_image(100, 9, "JPEG"))  # no label line
    return root


def fer2013_tree(root: Path) -> Path:
    """FER2013: `fer2013/fer2013.csv`, header `emotion,pixels,Usage`, 2304 space-separated grey
    values per row (Kaggle, "Challenges in Representation Learning: Facial Expression Recognition
    Challenge"; 0 angry .. 6 neutral; Training, PublicTest, PrivateTest)."""
    rng = np.random.default_rng(0)

    def pixels(n: int = 2304) -> str:
        return " ".join(map(str, rng.integers(0, 256, n)))

    rows = ["emotion,pixels,Usage",
            f"0,{pixels()},Training", f"3,{pixels()},Training", f"6,{pixels()},PublicTest",
            f"5,{pixels()},PrivateTest",
            f"7,{pixels()},Training",  # unknown emotion code
            f"2,{pixels(2300)},Training",  # too few pixels
            f"4,{pixels()},Validation",  # unknown Usage
            f"1,{' '.join(['17'] * 2304)},Training",  # blank image
            "3,12 34",  # a short line
            ]
    put(root, "fer2013/fer2013.csv", ("\n".join(rows) + "\n").encode())
    return root


# -- IEMOCAP ---------------------------------------------------------------------------------------
def iemocap_tree(root: Path) -> Path:
    """IEMOCAP: `IEMOCAP_full_release/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt` (header
    lines `[start - end]<TAB>turn<TAB>label<TAB>[V, A, D]`), `dialog/transcriptions/` (`turn
    [start-end]: text`) and `sentences/wav/<dialog>/<turn>.wav` (sail.usc.edu/iemocap, release
    README)."""
    base = root / "IEMOCAP_full_release"
    turns = {
        1: [("Ses01F_impro01_F000", "neu", "2.5000, 2.5000, 2.5000", "Excuse me."),
            ("Ses01F_impro01_M000", "fru", "2.0000, 3.5000, 3.5000", "Do you have your forms?"),
            ("Ses01F_impro01_F001", "xxx", "2.5000, 3.0000, 3.0000", "Yeah."),
            ("Ses01F_impro01_M001", "exc", "4.0000, 4.0000, 3.0000", None)],  # not transcribed
        3: [("Ses03M_script01_1_M000", "ang", "1.5000, 4.0000, 4.0000", "Get out."),
            ("Ses03M_script01_1_F000", "sad", "1.5000, 2.0000, 2.0000", "I can't."),
            ("Ses03M_script01_1_F001", "hap", "4.5000, 3.5000, 3.0000", "Oh, wonderful!")],
    }
    for session, rows in turns.items():
        dialog = rows[0][0].rsplit("_", 1)[0]
        header = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcript = []
        for t, (turn, label, vad, text) in enumerate(rows):
            start, end = 1.0 + 3 * t, 3.5 + 3 * t
            header += [f"[{start:.4f} - {end:.4f}]\t{turn}\t{label}\t[{vad}]",
                       "C-E2:\tNeutral;\t()", "A-E3:\tval 3; act 2; dom  2;\t()", ""]
            if text is not None:
                transcript.append(f"{turn} [{start:08.4f}-{end:08.4f}]: {text}")
            if turn != "Ses03M_script01_1_F001":  # evaluated, but its wav is missing
                put(base, f"Session{session}/sentences/wav/{dialog}/{turn}.wav", tone_wav())
        if session == 1:
            header += ["[9.0000 - x]\tSes01F_impro01_F002\tneu\t[2.5, 2.5]", ""]  # malformed header
            put(base, f"Session1/sentences/wav/{dialog}/Ses01F_impro01_F009.wav", tone_wav())  # not evaluated
            put(base, "Session1/dialog/EmoEvaluation/Categorical/Ses01F_impro01_e2_cat.txt", b"per evaluator")
        put(base, f"Session{session}/dialog/EmoEvaluation/{dialog}.txt", ("\n".join(header) + "\n").encode())
        put(base, f"Session{session}/dialog/transcriptions/{dialog}.txt",
            ("\n".join(transcript + [f"{dialog}_MXX0 [010.0000-011.0000]: [LAUGHTER]"]) + "\n").encode())
    return root
