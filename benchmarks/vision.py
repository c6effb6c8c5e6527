"""Vision path, before vs after, side by side on the same clips in one run: seconds and CPU
seconds per clip end to end, the way `face_detections` and `face_embeddings` do it (stored JPEG
frames decoded, faces detected, screened, aligned, PNG-encoded, hashed and written, crops read
back and embedded, the speaking face matched), with the CPU time of each component.

Usage: nice -n 10 .venv/bin/python benchmarks/vision.py --corpus MELD_ROOT [--clips 60] [--rounds 2]

Clips: the real RAVDESS talking-face clip (1280x720) from ../shared/data plus the first `--clips`
readable clips of a MELD.Raw folder (`emostore demo-corpus DIR --clips 120` writes one). Variants
run interleaved, round by round, on one torch thread (a second thread on the two shared cores
only slows the run; the "2 threads" variant shows it); the best round counts. Each variant's
accepted faces are compared with the "before" variant's, frame by frame. Prints the figures and
writes benchmarks/results/vision.json.

Variants: "before" is the path as of detections version 1 (facenet-pytorch's nets as they come,
bilinear downscale, pyramid step 0.709, PNG deflate level 6, dlib's own ResNet); "after" is the
default now; the others are "after" with one lever put back, to show what each lever is worth.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "vision.json"
RAVDESS = REPO.parent / "shared" / "data" / "audio" / "ravdess_actor01" / "01-01-01-01-01-01-01.mp4"
CLIPS_PER_BATCH = 16  # as assets.vision.detections batches clips through the detector


@dataclasses.dataclass(frozen=True)
class Variant:
    reference_detector: bool = False  # facenet-pytorch's nets as they come, bilinear downscale
    scale_factor: float | None = None  # None: the detector's default
    png_level: int | None = None  # None: encode_crop's
    dlib_runtime: str = "torch"
    threads: int = 1


VARIANTS = {
    "before": Variant(reference_detector=True, scale_factor=0.709, png_level=6, dlib_runtime="dlib"),
    "after, dlib's own ResNet": Variant(dlib_runtime="dlib"),
    "after, pyramid step 0.709": Variant(scale_factor=0.709),
    "after, detector as before (nets, downscale, step 0.709)": Variant(reference_detector=True, scale_factor=0.709),
    "after, PNG level 6": Variant(png_level=6),
    "after, 2 torch threads": Variant(threads=2),
    "after": Variant(),
}
COMPONENTS = ("jpeg_decode", "downscale", "mtcnn", "screen", "align", "png_encode", "hash_write",
              "png_decode", "dlib_landmarks", "embed_net", "match")


def clips(corpus: str | None, limit: int) -> list[Path]:
    """RAVDESS (when present) and the first `limit` clips of `corpus` that decode."""
    from storage.media import frames_per_second

    found = [RAVDESS] if RAVDESS.is_file() else []
    for path in sorted(Path(corpus).glob("*/dia*_utt*.mp4")) if corpus else []:
        if len(found) >= limit + (RAVDESS in found):
            break
        try:
            if list(frames_per_second(path)):
                found.append(path)
        except Exception:  # the benchmark corpus plants corrupt clips, as MELD has them
            continue
    if not found:
        sys.exit(f"no clip to measure: {RAVDESS} is absent and no --corpus was given")
    return found


class Timers:
    def __init__(self):
        self.cpu = defaultdict(float)

    def __call__(self, name, fn, *args):
        start = time.process_time()
        out = fn(*args)
        self.cpu[name] += time.process_time() - start
        return out


class VisionPath:
    """One variant's detector and embedder, run as the assets run them."""

    def __init__(self, variant: Variant, media_root: Path):
        from models.encoders.face_detect import CropGeometry, DetectionOptions, MTCNNDetector
        from models.encoders.face_embed import DlibEmbedder

        self.variant = variant
        self.options, self.geometry = DetectionOptions(), CropGeometry()
        kwargs = {} if variant.scale_factor is None else {"scale_factor": variant.scale_factor}
        self.detector = MTCNNDetector(self.options, reference=variant.reference_detector, **kwargs)
        self.embedder = DlibEmbedder(self.geometry, runtime=variant.dlib_runtime)
        self.media_root = media_root

    def encode(self, crop: np.ndarray) -> bytes:
        from PIL import Image

        from models.encoders.face_detect import encode_crop

        if self.variant.png_level is None:
            return encode_crop(crop)
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="PNG", optimize=False, compress_level=self.variant.png_level)
        return buffer.getvalue()

    def run(self, jpegs: list[list[bytes]], reference: np.ndarray | None, timers: Timers):
        """Clips (each its JPEG frames) end to end; returns the accepted faces per frame (boxes)
        and the embedded vectors."""
        import torch

        from models.encoders.face_detect import align_face, decode_crop, screen
        from models.face_gallery import FaceCandidate, match_speaking_face
        from storage import content_hash, media

        torch.set_num_threads(self.variant.threads)
        accepted, vectors = [], []
        for start in range(0, len(jpegs), CLIPS_PER_BATCH):
            batch = [(c, j) for c, clip in enumerate(jpegs[start:start + CLIPS_PER_BATCH]) for j in clip]
            images = [timers("jpeg_decode", _decode_jpeg, j) for _, j in batch]
            found = self._detect(images, timers)
            uris, owners = [], []
            for (clip, _), image, faces in zip(batch, images, found):
                kept = [v.detection for v in timers("screen", screen, faces, self.options) if v.accepted]
                accepted.append([d.box for d in kept])
                for k, face in enumerate(kept):
                    png = timers("png_encode", self.encode, timers("align", align_face, image, face, self.geometry))
                    uris.append(timers("hash_write", self._write, png, content_hash))
                    owners.append((clip, len(accepted), k))
            crops = [timers("png_decode", lambda u: decode_crop(media.read_media(u)), u) for u in uris]
            if self.variant.dlib_runtime == "torch":
                out = self._embed_torch(crops, timers)
            else:
                out = timers("embed_net", self.embedder.embed, crops)  # landmarks inside (~1%)
            vectors.extend(out)
            if reference is not None:
                by_clip = defaultdict(list)
                for (clip, frame, k), v in zip(owners, out):
                    by_clip[clip].append(FaceCandidate(f"c{clip}/t{frame}/face{k}", frame, v))
                for faces in by_clip.values():
                    timers("match", match_speaking_face, faces, ["speaker"], {"speaker": reference})
        return accepted, np.array(vectors, np.float32).reshape(-1, 128)

    def _detect(self, images, timers):
        from models.encoders import face_detect

        downscale = face_detect.downscale

        def timed_downscale(*args):
            return timers("downscale", downscale, *args)

        face_detect.downscale = timed_downscale
        try:
            start = time.process_time()
            found = self.detector.detect(images)
            timers.cpu["mtcnn"] += time.process_time() - start
        finally:
            face_detect.downscale = downscale
        return found

    def _embed_torch(self, crops, timers):
        import dlib

        from models.encoders.face_embed import DLIB_CHIP, DLIB_PADDING, unit_rows

        emb = self.embedder
        if not crops:
            return np.zeros((0, 128), np.float32)
        chips = timers("dlib_landmarks", lambda: np.stack([
            dlib.get_face_chip(c, emb._shape(np.ascontiguousarray(c), emb._face), DLIB_CHIP, DLIB_PADDING)
            for c in crops]))
        return timers("embed_net", lambda: unit_rows(np.concatenate(
            [emb._net(chips[s:s + emb.chips_per_batch]) for s in range(0, len(chips), emb.chips_per_batch)])))

    def _write(self, png: bytes, content_hash) -> str:
        from storage import media

        uri = str(self.media_root / f"{content_hash(png)}.png")
        if not media.media_exists(uri):
            media.write_media(uri, png)
        return uri


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def end_to_end(path: Path, detector, embedder, geometry, options, reference) -> int:
    """One clip through detection, alignment, PNG round trip, embedding and matching, straight from
    the video (kept for benchmarks/vision_levers.py); returns the faces matched."""
    from models.encoders.face_detect import align_face, decode_crop, encode_crop, screen
    from models.face_gallery import FaceCandidate, match_speaking_face
    from storage.media import frames_per_second

    frames = list(frames_per_second(path))
    crops, seconds = [], []
    for frame, found in zip(frames, detector.detect([f.image for f in frames])):
        for verdict in screen(found, options):
            if verdict.accepted:
                crops.append(decode_crop(encode_crop(align_face(frame.image, verdict.detection, geometry))))
                seconds.append(frame.second)
    vectors = embedder.embed(crops)
    faces = [FaceCandidate(f"c/t{s}/face{i}", s, v) for i, (s, v) in enumerate(zip(seconds, vectors))]
    return len(match_speaking_face(faces, ["speaker"], {"speaker": reference}).crop_ids)


def agreement(faces, before) -> dict:
    """Frame by frame: the same number of accepted faces, each overlapping one of before's."""
    from models.encoders.face_detect import box_iou

    same = sum(len(a) == len(b) for a, b in zip(faces, before))
    overlaps = [max((box_iou(x, y) for y in b), default=0.0) for a, b in zip(faces, before) for x in a]
    return {"frames_with_the_same_accepted_faces": f"{same}/{len(before)}",
            "accepted_faces": sum(map(len, faces)),
            "min_iou_with_before": round(min(overlaps, default=1.0), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", help="a MELD.Raw folder whose clips are measured too")
    parser.add_argument("--clips", type=int, default=60, help="clips taken from --corpus")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="names from VARIANTS")
    args = parser.parse_args()

    from storage.media import encode_jpeg, frames_per_second

    paths = clips(args.corpus, args.clips)
    jpegs = [[encode_jpeg(f.image) for f in frames_per_second(p)] for p in paths]  # as clip_frames stores them
    with tempfile.TemporaryDirectory() as tmp:
        setups = {name: VisionPath(VARIANTS[name], Path(tmp) / name.replace(" ", "_").replace(",", ""))
                  for name in args.variants}
        names = list(setups)
        first = setups[names[0]]
        accepted, vectors = first.run(jpegs[1:2], None, Timers())
        reference = vectors[0]
        wall = {n: float("inf") for n in names}
        cpu = {n: float("inf") for n in names}
        parts, faces = {}, {}
        for _ in range(args.rounds):
            for name in names:
                timers = Timers()
                start, start_cpu = time.perf_counter(), time.process_time()
                faces[name], _ = setups[name].run(jpegs, reference, timers)
                elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
                if elapsed_cpu < cpu[name]:
                    parts[name] = dict(timers.cpu)
                wall[name], cpu[name] = min(wall[name], elapsed), min(cpu[name], elapsed_cpu)

    n = len(paths)
    base = "before" if "before" in names else names[0]
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()[0]},
        "clips": n, "frames": sum(map(len, jpegs)), "rounds": args.rounds,
        "inputs": [p.name for p in paths],
        "ravdess_frames": len(jpegs[0]) if paths[0] == RAVDESS else 0,
        "variants": {},
    }
    for name in names:
        part = parts[name]
        part["mtcnn"] -= part.get("downscale", 0.0)
        total = sum(part.values())
        ravdess = [len(f) for f in faces[name][:results["ravdess_frames"]]]
        results["variants"][name] = {
            "s_per_clip": round(wall[name] / n, 3),
            "cpu_s_per_clip": round(cpu[name] / n, 3),
            "speedup_vs_before": round(wall[base] / wall[name], 2),
            "cpu_speedup_vs_before": round(cpu[base] / cpu[name], 2),
            "cpu_ms_per_clip_by_component": {k: round(part.get(k, 0.0) / n * 1000, 1) for k in COMPONENTS},
            "cpu_share_by_component": {k: round(part.get(k, 0.0) / total, 3) for k in COMPONENTS},
            "ravdess_faces_per_frame": ravdess,
            **agreement(faces[name], faces[base]),
        }
        figures = results["variants"][name]
        print(f"{name}: {figures['s_per_clip']} s/clip, {figures['cpu_s_per_clip']} CPU s/clip "
              f"(x{figures['speedup_vs_before']} wall, x{figures['cpu_speedup_vs_before']} CPU); "
              f"accepted {figures['accepted_faces']} ({figures['frames_with_the_same_accepted_faces']} frames as before, "
              f"min IoU {figures['min_iou_with_before']}); RAVDESS {ravdess}", flush=True)
        print("   CPU ms/clip: " + ", ".join(f"{k} {v}" for k, v in figures["cpu_ms_per_clip_by_component"].items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
