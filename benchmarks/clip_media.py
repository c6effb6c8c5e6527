"""Clip media throughput: clips per second for probing (and hashing), speech audio extraction
(decode 5.1, choose the channel, FLAC) and 1 fps frame extraction (decode in order, JPEG), with one
and with two threads, and the MELD ingest of the real CSVs.

Usage: .venv/bin/python benchmarks/clip_media.py [--clips N] [--seconds S] [--corpus MELD_ROOT]
Without --corpus it writes N MELD-like clips (H.264 1280x720 23.976 fps, 5.1 AAC 48 kHz, S seconds)
to a temporary folder. Prints the figures and writes benchmarks/results/clip_media.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "clip_media.json"
SHARED_MELD = REPO.parent / "shared" / "data" / "meld"


def write_meld_like_clip(path: Path, seconds: float, seed: int) -> None:
    """A clip shaped like MELD's: moving texture at 1280x720, a voice-like signal on one channel."""
    import av

    rng = np.random.default_rng(seed)
    fps, rate, size = Fraction(24000, 1001), 48_000, (1280, 720)
    texture = rng.integers(0, 255, (size[1] // 8, size[0] // 8 + 64, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(130 + 20 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voice = 0.1 * sum(np.sin(k * phase) / k for k in range(1, 30)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    audio = rng.normal(0, 0.001, (6, t.size)).astype(np.float32)
    audio[int(rng.choice([0, 1, 2, 4, 5]))] += voice.astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=rate, layout="5.1")
        for i in range(int(seconds * fps)):
            shift = (i * 2) % 64
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, shift:shift + size[0]]), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for start in range(0, t.size, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + 1024]), format="fltp", layout="5.1")
            chunk.sample_rate, chunk.pts = rate, start
            for packet in sound.encode(chunk):
                container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)


def rate(fn, clips: list[Path], threads: int) -> float:
    """Clips per second of `fn` over `clips` with a pool of `threads`."""
    start = time.perf_counter()
    if threads == 1:
        for clip in clips:
            fn(clip)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, clips))
    return len(clips) / (time.perf_counter() - start)


def main() -> None:
    from storage import media

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--corpus", type=Path, help="a MELD.Raw root whose clips to use instead")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus:
            clips = sorted(args.corpus.rglob("dia*_utt*.mp4"))[: args.clips]
            source = f"{args.corpus} ({len(clips)} clips)"
        else:
            clips = [Path(tmp) / f"dia0_utt{i}.mp4" for i in range(args.clips)]
            for i, clip in enumerate(clips):
                write_meld_like_clip(clip, args.seconds, seed=i)
            source = f"{len(clips)} synthetic clips, 1280x720 23.976 fps, 5.1 AAC, {args.seconds:g} s"
        out = Path(tmp) / "out"
        out.mkdir()

        def audio(clip: Path) -> None:
            speech = media.speech_audio(clip)
            media.write_media(str(out / f"{clip.stem}.flac"), media.encode_flac(speech.samples))

        def frames(clip: Path) -> None:
            for frame in media.frames_per_second(clip):
                media.write_media(str(out / f"{clip.stem}_{frame.second}.jpg"), media.encode_jpeg(frame.image))

        audio(clips[0]), frames(clips[0])  # warm up imports and codecs
        seconds = sum(media.probe(c).duration_s or 0 for c in clips)
        figures = {
            "source": source,
            "clip seconds": round(seconds, 1),
            "probe clips/s": round(rate(media.probe, clips, 1), 1),
            "sha256 clips/s": round(rate(media.file_sha256, clips, 1), 1),
        }
        for threads in (1, 2):
            figures[f"audio clips/s ({threads} thread{'s' * (threads > 1)})"] = round(rate(audio, clips, threads), 2)
            figures[f"frames clips/s ({threads} thread{'s' * (threads > 1)})"] = round(rate(frames, clips, threads), 2)

    if (SHARED_MELD / "train_sent_emo.csv").is_file():
        from assets.meld.utterances import Limits, ingest_split

        with tempfile.TemporaryDirectory() as root:
            os.symlink(SHARED_MELD / "train_sent_emo.csv", Path(root) / "train_sent_emo.csv")
            start = time.perf_counter()
            rows = ingest_split(root, "train", Limits(0.1, 30.0)).rows
            figures["ingest real train CSV rows/s (no clips)"] = round(len(rows) / (time.perf_counter() - start))

    figures["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    for name, value in figures.items():
        print(f"{name:<42} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
