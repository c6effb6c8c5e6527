"""Training throughput: loading a MELD-sized store and seconds per epoch of every registered model,
in the bench loop (`models.train.train`) and in a bare PyTorch loop over the same tensors.

The ratio bench / bare is the bench's overhead per epoch (re-collating the train batches, the dev
pass and its metrics); the goal is at most 1.5. Where a model exceeds it, the parts of the
overhead are timed alone. Prints figures and writes them to benchmarks/results/training.json. Run:
    .venv/bin/python benchmarks/training.py [--dialogues 1000] [--utterances-per-dialogue 10]
        [--epochs 3] [--rounds 1] [--models concat_mlp mamba] [--threads 2] [--store DIR] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn

from models.fusion import MODELS, load_models
from models.train import (
    EVAL_DIALOGUES, ClassificationLoss, TrainOptions, batches, build_seeded, collate, inverse_frequency,
    metrics, predict_batches, seed_everything, split_holdout, train,
)
from storage import Status, Store, content_hash, row_key
from storage.dataset import FEATURE_TABLES, FeatureSource, TrainingData, load_training_data
from storage.labels import EMOTIONS

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"

# MELD's train split: 4710 neutral, 1743 joy, 1205 surprise, 1109 anger, 683 sadness, 271 disgust,
# 268 fear of 9989 utterances (Poria et al. 2019), in EMOTIONS order.
EMOTION_COUNTS = {"anger": 1109, "disgust": 271, "fear": 268, "joy": 1743, "neutral": 4710,
                  "sadness": 683, "surprise": 1205}
EMOTION_SHARES = np.array([EMOTION_COUNTS[e] for e in EMOTIONS], dtype=np.float64) / sum(EMOTION_COUNTS.values())
SENTIMENT_OF = {"anger": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative",
                "joy": "positive", "surprise": "positive", "neutral": "neutral"}
SPLIT_SHARES = {"train": 0.8, "dev": 0.1, "test": 0.1}
MAIN_CAST = ["Ross", "Rachel", "Chandler", "Monica", "Joey", "Phoebe"]  # ~85% of MELD's utterances
N_SPEAKERS = 260  # MELD names ~260 speakers
DIMS = {"text": 384, "speaker": 256, "face": 128}  # all-MiniLM-L6-v2, resemblyzer, dlib
FINGERPRINTS = {"text": "text-minilm", "speaker": "speaker-resemblyzer", "face": "face-dlib"}
STALE_TEXT_FINGERPRINT = "text-minilm-old"  # a second encoder's rows beside the current ones
NO_FACE_SHARE = 0.3  # of speaking_faces rows: no face matched the labelled speaker
SILENT_SHARE = 0.02  # of speaker_embeddings rows: audio unusable
SIGNAL = 0.1  # default class-mean norm per sqrt(dimension), against unit noise per dimension
RATIO_GOAL = 1.5
OK = str(Status.OK)


# -- the synthetic store ------------------------------------------------------------------------
def utterances(n_dialogues: int, per_dialogue: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The utterances' ids, positions, speakers and labels, dialogues of 1 + binomial lengths
    (mean `per_dialogue`, exactly n_dialogues * per_dialogue utterances), split 80/10/10."""
    total = n_dialogues * per_dialogue
    lengths = 1 + rng.multinomial(total - n_dialogues, np.full(n_dialogues, 1.0 / n_dialogues))
    n_train = round(SPLIT_SHARES["train"] * n_dialogues)
    n_dev = round(SPLIT_SHARES["dev"] * n_dialogues)
    splits = np.array(["train"] * n_train + ["dev"] * n_dev + ["test"] * (n_dialogues - n_train - n_dev))
    first = {"train": 0, "dev": n_train, "test": n_train + n_dev}
    others = [f"Speaker{i:03d}" for i in range(N_SPEAKERS - len(MAIN_CAST))]
    speaker_pool = np.array(MAIN_CAST + others)
    speaker_p = np.r_[np.full(len(MAIN_CAST), 0.85 / len(MAIN_CAST)), np.full(len(others), 0.15 / len(others))]
    split = np.repeat(splits, lengths)
    dialogue = np.concatenate([np.full(n, d - first[s]) for d, (n, s) in enumerate(zip(lengths, splits))])
    utterance = np.concatenate([np.arange(n) for n in lengths])
    ids = np.array([f"{s}/dia{d}_utt{u}" for s, d, u in zip(split, dialogue, utterance)])
    emotion = np.array(EMOTIONS)[rng.choice(len(EMOTIONS), size=total, p=EMOTION_SHARES)]
    return {"id": ids, "split": split, "dialogue_id": dialogue.astype(np.int32),
            "utterance_id": utterance.astype(np.int32), "emotion": emotion,
            "speaker": speaker_pool[rng.choice(len(speaker_pool), size=total, p=speaker_p)]}


def weak_vectors(labels: np.ndarray, dim: int, signal: float, rng: np.random.Generator) -> np.ndarray:
    """(N, dim) float32 unit vectors: a per-class mean of norm signal * sqrt(dim) plus unit noise."""
    means = rng.standard_normal((len(EMOTIONS), dim))
    means *= signal * np.sqrt(dim) / np.linalg.norm(means, axis=1, keepdims=True)
    vectors = means[labels] + rng.standard_normal((len(labels), dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def meld_rows(u: dict[str, np.ndarray], rng: np.random.Generator) -> pa.Table:
    """meld_utterances rows for every utterance, every column of the schema filled as the MELD
    asset fills it for a clip that probed fine (status ok)."""
    n = len(u["id"])
    start = rng.uniform(0, 1300, n)
    duration = rng.uniform(0.5, 8.0, n)
    clock = lambda s: f"00:{int(s // 60):02d}:{s % 60:06.3f}".replace(".", ",")  # noqa: E731
    digests = [content_hash(i) for i in u["id"]]
    return pa.table({
        "id": u["id"], "split": u["split"], "dialogue_id": u["dialogue_id"], "utterance_id": u["utterance_id"],
        "sr_no": np.arange(1, n + 1, dtype=np.int32),
        "utterance": ["Oh my God, you guys are not gonna believe this."] * n,
        "speaker": u["speaker"], "emotion": u["emotion"],
        "sentiment": [SENTIMENT_OF[e] for e in u["emotion"]],
        "season": rng.integers(1, 11, n).astype(np.int32), "episode": rng.integers(1, 25, n).astype(np.int32),
        "start_time": [clock(s) for s in start], "end_time": [clock(s) for s in start + duration],
        "text": ["Oh my God, you guys are not gonna believe this."] * n,
        "stage_directions": [[] for _ in range(n)], "speakers": [[s] for s in u["speaker"]],
        "speaker_combined": np.zeros(n, bool),
        "start_s": start, "end_s": start + duration, "duration_s": duration,
        "clip_uri": [f"file:///meld/{i}.mp4" for i in u["id"]],
        "clip_bytes": rng.integers(100_000, 2_000_000, n), "clip_sha256": digests,
        "media_duration_s": duration, "video_codec": ["h264"] * n, "fps": np.full(n, 23.976),
        "width": np.full(n, 1280, np.int32), "height": np.full(n, 720, np.int32),
        "audio_codec": ["aac"] * n, "audio_channels": np.full(n, 6, np.int32), "audio_layout": ["5.1"] * n,
        "audio_sample_rate": np.full(n, 48000, np.int32),
        "issues": [[] for _ in range(n)], "quirks": [[] for _ in range(n)],
        "csv_line": np.arange(2, n + 2, dtype=np.int32),
        "status": [OK] * n, "reason": [""] * n,
    })


def embedding_rows(u: dict[str, np.ndarray], vectors: np.ndarray, status: np.ndarray, fingerprint: str,
                   encoder: str) -> pa.Table:
    """Lance utterance-embedding rows (storage/schemas/audio.py): zero vectors where not ok."""
    ok = status == OK
    vectors = np.where(ok[:, None], vectors, np.float32(0.0))
    hashes = [content_hash(fingerprint, i) for i in u["id"]]
    dim = vectors.shape[1]
    return pa.table({
        "key": [row_key(i, h, fingerprint) for i, h in zip(u["id"], hashes)],
        "id": u["id"], "split": u["split"], "speaker": u["speaker"], "emotion": u["emotion"],
        "input_hash": hashes, "fingerprint": [fingerprint] * len(hashes), "encoder": [encoder] * len(hashes),
        "status": status, "reason": np.where(ok, "", "audio unusable"),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
    })


def face_rows(u: dict[str, np.ndarray], vectors: np.ndarray, status: np.ndarray) -> pa.Table:
    """speaking_faces rows (storage/schemas/vision.py): a null vector unless ok."""
    ok = status == OK
    n = len(ok)
    offsets = np.r_[0, np.cumsum(np.where(ok, vectors.shape[1], 0))].astype(np.int32)
    values = pa.array(vectors[ok].reshape(-1))
    vector = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~ok))
    frames = np.full(n, 4, np.int32)  # 1 fps frames of a ~4 s clip
    return pa.table({
        "id": u["id"], "split": u["split"], "speaker": u["speaker"],
        "matched_speaker": np.where(ok, u["speaker"], None), "combined": np.zeros(n, bool),
        "frames": frames, "frames_with_face": np.where(ok, frames, 0).astype(np.int32),
        "frames_matched": np.where(ok, frames, 0).astype(np.int32),
        "confidence": np.where(ok, 0.8, np.nan).astype(np.float32),
        "crop_ids": [[f"{i}/t0/face0"] if k else [] for i, k in zip(u["id"], ok)],
        "fingerprint": [FINGERPRINTS["face"]] * n, "encoder": ["dlib"] * n, "vector": vector,
        "status": status, "reason": np.where(ok, "", "no face matched the labelled speaker"),
    })


def write_store(store: Store, n_dialogues: int, per_dialogue: int, signal: float, seed: int) -> dict[str, int]:
    """A MELD-sized store of meld_utterances, text_embeddings (two fingerprints),
    speaker_embeddings and speaking_faces. Returns rows written per table."""
    rng = np.random.default_rng(seed)
    u = utterances(n_dialogues, per_dialogue, rng)
    labels = np.array([EMOTIONS.index(e) for e in u["emotion"]])
    n = len(labels)
    meld = meld_rows(u, rng)
    table = store.parquet("meld_utterances")
    for split in SPLIT_SHARES:
        table.write(meld.filter(pc.equal(meld.column("split"), split)), partition=split)

    text = store.lance("text_embeddings")
    all_ok = np.full(n, OK, dtype=object)
    text.upsert(embedding_rows(u, weak_vectors(labels, DIMS["text"], signal, rng), all_ok,
                               STALE_TEXT_FINGERPRINT, "minilm-old"), tag="bench stale encoder")
    text.upsert(embedding_rows(u, weak_vectors(labels, DIMS["text"], signal, rng), all_ok,
                               FINGERPRINTS["text"], "minilm"), tag="bench current encoder")
    speaker_status = np.where(rng.random(n) < SILENT_SHARE, str(Status.SILENT), OK).astype(object)
    store.lance("speaker_embeddings").upsert(
        embedding_rows(u, weak_vectors(labels, DIMS["speaker"], signal, rng), speaker_status,
                       FINGERPRINTS["speaker"], "resemblyzer"), tag="bench")
    face_status = np.where(rng.random(n) < NO_FACE_SHARE, str(Status.NO_FACE), OK).astype(object)
    faces = face_rows(u, weak_vectors(labels, DIMS["face"], signal, rng), face_status)
    table = store.parquet("speaking_faces")
    for split in SPLIT_SHARES:
        table.write(faces.filter(pc.equal(faces.column("split"), split)), partition=split,
                    fingerprint=FINGERPRINTS["face"])
    return {"meld_utterances": n, "text_embeddings": 2 * n, "speaker_embeddings": n, "speaking_faces": n}


SOURCES = [FeatureSource(m, FEATURE_TABLES[m], FINGERPRINTS[m]) for m in DIMS]


# -- the two loops --------------------------------------------------------------------------------
def train_dialogues(model: nn.Module, data: TrainingData, options: TrainOptions) -> list[np.ndarray]:
    """The dialogues the bench loop trains on (the holdout taken out, for models that need one)."""
    dialogues = data.dialogues("train")
    if getattr(model, "needs_holdout", False):
        dialogues, _ = split_holdout(dialogues, options.holdout_fraction, options.seed)
    return dialogues


def bare_epochs(name: str, data: TrainingData, options: TrainOptions) -> tuple[list[float], ...]:
    """(seconds, CPU seconds, mean train loss) per epoch of a plain loop: the model built as the
    bench builds it, the loop's loss (ClassificationLoss with its class weights, through
    `training_loss` where the model has one), AdamW and gradient clipping, on the same train
    dialogues; batches collated once and only their order shuffled; no dev pass."""
    model = build_seeded(data, name, seed=options.seed)
    seed_everything(options.seed)
    dialogues = train_dialogues(model, data, options)
    rows = np.concatenate(dialogues)
    weight = None
    if options.class_weights:
        weight = inverse_frequency(data.labels[rows], len(data.classes), options.class_weight_power)
    loss_fn = ClassificationLoss(len(data.classes), weight, options.focal_gamma, options.label_smoothing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    fixed = batches(data, dialogues, options.batch_dialogues)
    shuffle = np.random.default_rng(options.seed)
    step_loss = getattr(model, "training_loss", None)
    seconds, cpu_seconds, losses = [], [], []
    model.train()
    for _ in range(options.epochs):
        start, cpu_start, total = time.perf_counter(), time.process_time(), 0.0
        for i in shuffle.permutation(len(fixed)):
            batch = fixed[i]
            loss = step_loss(batch, loss_fn) if step_loss else loss_fn(model(batch), batch.target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if options.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            total += float(loss.detach())
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        losses.append(total / len(fixed))
    return seconds, cpu_seconds, losses


def bench_epochs(name: str, data: TrainingData, options: TrainOptions) -> dict:
    """The bench loop's per-epoch figures; CPU seconds (every thread of the process) are read
    at each epoch's progress call, the first epoch's counted from just before `train`."""
    model = build_seeded(data, name, seed=options.seed)
    cpu_marks = [time.process_time()]
    result = train(model, data, options, progress=lambda *_: cpu_marks.append(time.process_time()))
    return {"seconds": [h["seconds"] for h in result.history], "cpu_seconds": list(np.diff(cpu_marks)),
            "train_loss": [h["train_loss"] for h in result.history],
            "dev_weighted_f1": [h["dev_weighted_f1"] for h in result.history],
            "train_call_s": result.seconds, "test_weighted_f1": result.metrics["test"]["weighted_f1"]}


def overhead_parts(name: str, data: TrainingData, options: TrainOptions, repeats: int = 5) -> dict[str, float]:
    """The parts of the bench's epoch a bare loop does not have, each timed alone (median ms of
    `repeats`): collating one epoch of train batches, the dev forward pass, the dev metrics."""
    model = build_seeded(data, name, seed=options.seed)
    dialogues = train_dialogues(model, data, options)
    dev_batches = batches(data, data.dialogues("dev"), EVAL_DIALOGUES)
    shuffle = np.random.default_rng(options.seed)

    def collate_epoch():
        order = shuffle.permutation(len(dialogues))
        for s in range(0, len(order), options.batch_dialogues):
            collate(data, [dialogues[i] for i in order[s: s + options.batch_dialogues]])

    rows, probs = predict_batches(model, dev_batches)
    parts = {"collate train batches": collate_epoch,
             "dev forward (predict_batches)": lambda: predict_batches(model, dev_batches),
             "dev metrics (sklearn)": lambda: metrics(data.labels[rows], probs.argmax(1), data.classes)}
    return {f"{part} ms": round(1000 * float(np.median([timed(fn)[1] for _ in range(repeats)])), 1)
            for part, fn in parts.items()}


def profile_bench_epoch(name: str, data: TrainingData, options: TrainOptions, top: int = 12) -> str:
    """cProfile of one bench epoch (train() with one epoch), the top functions by cumulative time."""
    model = build_seeded(data, name, seed=options.seed)
    profiler = cProfile.Profile()
    profiler.runcall(train, model, data, TrainOptions(**{**options.as_dict(), "epochs": 1}))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def median(values) -> float:
    return float(np.median(values))


def measure_model(name: str, data: TrainingData, options: TrainOptions, rounds: int, profile: bool) -> dict:
    """Bench and bare epochs of one model over `rounds` rounds, the loops' order alternating
    between rounds so that the machine's load falls on both alike; medians over every epoch."""
    bench_s, bare_s, bench_cpu, bare_cpu, bench_runs, bare_loss = [], [], [], [], [], []
    for r in range(rounds):
        for loop in (("bench", "bare") if r % 2 == 0 else ("bare", "bench")):
            if loop == "bench":
                bench_runs.append(bench_epochs(name, data, options))
                bench_s.append(bench_runs[-1]["seconds"])
                bench_cpu.append(bench_runs[-1]["cpu_seconds"])
            else:
                seconds, cpu_seconds, losses = bare_epochs(name, data, options)
                bare_s.append(seconds)
                bare_cpu.append(cpu_seconds)
                bare_loss.append(losses)
    flat = lambda runs: [x for run in runs for x in run]  # noqa: E731
    bench_all, bare_all = flat(bench_s), flat(bare_s)
    parts = overhead_parts(name, data, options)
    bench, bare = median(bench_all), median(bare_all)
    entry = {
        "bench s/epoch": round(bench, 3), "bare s/epoch": round(bare, 3), "ratio": round(bench / bare, 2),
        "bench min s/epoch": round(min(bench_all), 3), "bare min s/epoch": round(min(bare_all), 3),
        "ratio of minima": round(min(bench_all) / min(bare_all), 2),
        # CPU time is what a busy machine inflates least: time spent waiting for a core is not in it
        "bench CPU s/epoch": round(median(flat(bench_cpu)), 3), "bare CPU s/epoch": round(median(flat(bare_cpu)), 3),
        "CPU ratio": round(median(flat(bench_cpu)) / median(flat(bare_cpu)), 2),
        # what the bench's epoch would take if it were the bare one plus the parts timed alone
        "ratio predicted from parts": round((bare + sum(parts.values()) / 1000) / bare, 2),
        "overhead parts": parts,
        "bench epochs s (per round)": [[round(x, 3) for x in run] for run in bench_s],
        "bare epochs s (per round)": [[round(x, 3) for x in run] for run in bare_s],
        "bench epochs CPU s (per round)": [[round(x, 3) for x in run] for run in bench_cpu],
        "bare epochs CPU s (per round)": [[round(x, 3) for x in run] for run in bare_cpu],
        "first epoch slower (bench, bare), per round": [
            [bool(b[0] > max(b[1:], default=0)), bool(p[0] > max(p[1:], default=0))] for b, p in zip(bench_s, bare_s)],
        "bench train loss": [round(x, 4) for x in bench_runs[0]["train_loss"]],
        "bare train loss": [round(x, 4) for x in bare_loss[0]],
        "bench dev weighted F1": [round(x, 4) for x in bench_runs[0]["dev_weighted_f1"]],
        "bench test weighted F1": round(bench_runs[0]["test_weighted_f1"], 4),
        "bench train() call s": [round(run["train_call_s"], 2) for run in bench_runs],
        "bare loss": "ClassificationLoss as the loop builds it (class weights), grad clip as the loop"
                     + (", through model.training_loss" if hasattr(MODELS[name].build, "training_loss") else ""),
        "load average after (1 min)": round(os.getloadavg()[0], 2),
    }
    if profile and entry["ratio"] > RATIO_GOAL:
        entry["profile of one bench epoch"] = profile_bench_epoch(name, data, options)
    return entry


# -- main -------------------------------------------------------------------------------------------
def main() -> None:
    load_models()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=1000)
    parser.add_argument("--utterances-per-dialogue", type=int, default=10, help="mean; lengths vary")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=sorted(MODELS), choices=sorted(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--store", help="write the store here (default: a temporary folder)")
    parser.add_argument("--rounds", type=int, default=1, help="bench and bare runs per model, interleaved")
    parser.add_argument("--loads", type=int, default=3, help="timed loads of the dataset")
    parser.add_argument("--profile", action="store_true", help="cProfile one bench epoch of each model over the goal")
    parser.add_argument("--quick", action="store_true", help="200 dialogues, 2 epochs: a smoke run")
    parser.add_argument("--signal", type=float, default=SIGNAL, help="how informative the vectors are")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.dialogues, args.epochs = 200, 2
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    figures: dict = {
        "dialogues": args.dialogues, "utterances per dialogue (mean)": args.utterances_per_dialogue,
        "epochs": args.epochs, "rounds": args.rounds, "signal": args.signal,
        "torch threads": torch.get_num_threads(), "cpus": os.cpu_count() or 0,
        "torch": torch.__version__, "load average at start (1, 5, 15 min)": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(args.store or scratch)
        rows, seconds = timed(lambda: write_store(store, args.dialogues, args.utterances_per_dialogue,
                                                  args.signal, args.seed))
        figures["store rows written"] = rows
        figures["store write s (not a figure that matters)"] = round(seconds, 2)
        loads = [timed(lambda: load_training_data(store, SOURCES))[1] for _ in range(args.loads)]
        data = load_training_data(store, SOURCES)
    figures["load_training_data s (median)"] = round(median(loads), 3)
    figures["load_training_data s (each)"] = [round(s, 3) for s in loads]
    figures["utterances per split"] = data.counts["utterances"]
    figures["masked per modality"] = {m: sum(v.values()) for m, v in data.counts["masked"].items()}
    figures["rows read per source"] = data.counts["rows_read"]

    # patience past the last epoch: the bench never stops early
    options = TrainOptions(epochs=args.epochs, patience=args.epochs + 1, seed=args.seed)
    figures["train options"] = options.as_dict()
    per_model: dict[str, dict] = {}
    for name in args.models:
        per_model[name] = measure_model(name, data, options, args.rounds, args.profile)
        e = per_model[name]
        print(f"{name:18} bench {e['bench s/epoch']:7.3f} s/epoch  bare {e['bare s/epoch']:7.3f} s/epoch  "
              f"ratio {e['ratio']:5.2f}  (of minima {e['ratio of minima']:5.2f}, of CPU {e['CPU ratio']:5.2f})  "
              f"{e['overhead parts']}", flush=True)
    figures["models"] = per_model
    figures["models over the 1.5x goal"] = [m for m, e in per_model.items() if e["ratio"] > RATIO_GOAL]
    figures["load average at end (1, 5, 15 min)"] = [round(x, 2) for x in os.getloadavg()]
    figures["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["wall s"] = round(time.perf_counter() - started, 1)

    print()
    print(f"{'model':18} {'bench s/epoch':>14} {'bare s/epoch':>13} {'ratio':>6} {'CPU ratio':>10} "
          f"{'from parts':>11}")
    for name, e in per_model.items():
        print(f"{name:18} {e['bench s/epoch']:14.3f} {e['bare s/epoch']:13.3f} {e['ratio']:6.2f} "
              f"{e['CPU ratio']:10.2f} {e['ratio predicted from parts']:11.2f}")
    print()
    for key, value in figures.items():
        if key not in ("models", "train options"):
            print(f"{key:45} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
