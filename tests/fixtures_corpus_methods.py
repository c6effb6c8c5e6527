"""A real store (Lance corpus embedding tables in a temporary folder) holding synthetic speech and
text embeddings of an IEMOCAP-like and a CREMA-D-like corpus with known structure, for the
LDA-PLDA and two-stage assets.

Every item has a latent (valence, arousal, dominance) point near its emotion's prototype; its
speech vector is a fixed linear map of that point plus a speaker offset, a corpus offset and
noise, and its text vector another map plus noise. So emotions differ along three directions,
IEMOCAP's ratings are a noisy linear function of the vectors, and one corpus differs from the
other by a shift, as recordings of two studios do.
"""

from __future__ import annotations

import numpy as np

from storage import Status, Store, row_key
from storage.schemas.unimodal import CORPUS_EMBEDDINGS

SPEECH_DIM, TEXT_DIM = 256, 384  # the tables' declared sizes (resemblyzer, MiniLM)
PROTOTYPES = {  # emotion -> (valence, arousal, dominance) on IEMOCAP's 1-5 scale
    "anger": (1.8, 4.2, 4.0), "joy": (4.2, 3.8, 3.4), "neutral": (3.0, 2.4, 3.0),
    "sadness": (1.8, 1.8, 2.0), "fear": (1.6, 3.8, 1.6), "disgust": (1.8, 3.0, 3.6),
}
IEMOCAP_EMOTIONS = ("anger", "joy", "neutral", "sadness")
CREMAD_EMOTIONS = tuple(PROTOTYPES)
SESSIONS = 5
PER_SPEAKER = 10  # items per speaker and emotion in IEMOCAP (two speakers a session)


def _maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, SPEECH_DIM)), rng.normal(size=(3, TEXT_DIM))


def _items(rng, corpus: str, emotions, speakers: dict[str, int], per_speaker: int):
    """(id, speaker, fold, label, vad (3,)) per item."""
    out = []
    for speaker, fold in speakers.items():
        for emotion in emotions:
            for i in range(per_speaker):
                vad = np.asarray(PROTOTYPES[emotion]) + rng.normal(scale=0.25, size=3)
                out.append((f"{speaker}_{emotion}_{i:02d}", speaker, fold, emotion, np.clip(vad, 1, 5)))
    return out


def _row(corpus: str, item, vector: np.ndarray, fingerprint: str, encoder: str, rated: bool, kind: str) -> dict:
    id_, speaker, fold, label, vad = item
    row = {
        "key": row_key(f"{corpus}/{id_}", "h", fingerprint), "corpus": corpus, "id": id_, "speaker": speaker,
        "fold": fold, "split": "train", "label": label, "raw_labels": [label],
        "valence": float(vad[0]) if rated else None, "arousal": float(vad[1]) if rated else None,
        "dominance": float(vad[2]) if rated else None, "input_hash": "h", "fingerprint": fingerprint,
        "encoder": encoder, "status": str(Status.OK), "reason": "", "vector": vector.astype(np.float32).tolist(),
    }
    if kind in ("speaker", "asr"):
        row["duration_s"] = 2.0
    return row


def write_corpus_store(root, encoders: dict[str, str], seed: int = 0, noise: float = 3.0) -> Store:
    """A store with corpus_speaker_embeddings (IEMOCAP and CREMA-D) and corpus_text_embeddings
    (IEMOCAP), rows written with the given encoder identities (modality -> ModelSpec.encoder)."""
    store = Store(str(root))
    speech_map, text_map = _maps(seed)
    rng = np.random.default_rng(seed + 1)
    iemocap = _items(rng, "iemocap", IEMOCAP_EMOTIONS,
                     {f"Ses{s:02d}{g}": s for s in range(1, SESSIONS + 1) for g in "FM"}, PER_SPEAKER)
    cremad = _items(rng, "cremad", CREMAD_EMOTIONS, {str(1001 + a): a % 5 + 1 for a in range(6)}, 8)
    corpus_shift = {"iemocap": rng.normal(scale=0.5, size=SPEECH_DIM), "cremad": rng.normal(scale=0.5, size=SPEECH_DIM)}
    speaker_offset: dict[str, np.ndarray] = {}
    speech_rows, text_rows = [], []
    for corpus, items in (("iemocap", iemocap), ("cremad", cremad)):
        for item in items:
            offset = speaker_offset.setdefault(item[1], rng.normal(scale=0.5, size=SPEECH_DIM))
            speech = (item[4] - 3.0) @ speech_map + offset + corpus_shift[corpus] + noise * rng.normal(size=SPEECH_DIM)
            speech_rows.append(_row(corpus, item, speech, "speech-fp", encoders["speaker"], corpus == "iemocap", "speaker"))
            if corpus == "iemocap":
                text = (item[4] - 3.0) @ text_map + noise * rng.normal(size=TEXT_DIM)
                text_rows.append(_row(corpus, item, text, "text-fp", encoders["text"], True, "text"))
    store.lance(CORPUS_EMBEDDINGS["speaker"].name).upsert(speech_rows)
    store.lance(CORPUS_EMBEDDINGS["text"].name).upsert(text_rows)
    return store
