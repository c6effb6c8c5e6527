"""The resources assets ask for: the store, corpus roots, encoder specs and thresholds.

Each is a small typed `ConfigurableResource`. The TOML sections of `emostore.toml` are exactly
these fields (`pipelines/settings.py` validates the file against them), so the UI's resource
view, the README's key table and the config file all describe the same thing.

A resource with a `fingerprint()` contributes it to the version of every asset that uses it and
of everything downstream (see `assets/versioning.py`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from models.spec import ModelSpec
from storage import Store
from storage.labels import LabelRules


class StoreResource(dg.ConfigurableResource):
    """Where tables live: a local path or an object-store URI (`[store] root`)."""

    root: str = Field(default="store", description="Store root: a path (relative to the config file) or a URI such as s3://bucket/prefix.")
    shards: dict[str, int] = Field(default_factory=dict, description="Shards per MELD split, e.g. `{ train = 34, dev = 4, test = 9 }` (~300 clips each; a split not named: 1; at most 99 in all).")
    item_shards: int = Field(default=1, ge=1, le=99, description="Shards of the corpus embedding assets' items (by a CRC-32 of corpus/id), e.g. 8 for FER2013's 35,887 images; 1: unpartitioned.")

    def store(self) -> Store:
        return Store(self.root, shards=dict(self.shards))


class CorporaResource(dg.ConfigurableResource):
    """Roots of the corpora the user has (`[corpora.<name>] root`); a corpus not listed is skipped."""

    roots: dict[str, str] = Field(default_factory=dict, description="Corpus name -> root folder.")

    def root(self, name: str) -> str | None:
        return self.roots.get(name)


class EncoderResource(dg.ConfigurableResource):
    """One encoder role (`[encoders.<role>]`): backend, model name or local weights, parameters."""

    role: str = Field(description="The role this encoder fills (asr, speaker, text, ...).")
    backend: str = Field(description="Which implementation runs the model (e.g. faster-whisper, resemblyzer).")
    model: str = Field(default="", description="A model name the backend knows (e.g. tiny.en).")
    path: str = Field(default="", description="Local weights (file or folder); overrides `model` for loading.")
    checksum: str = Field(default="", description="Expected weights checksum; computed from `path` when empty.")
    params: dict[str, Any] = Field(default_factory=dict, description="Backend parameters (batch size, compute type, ...).")

    def spec(self) -> ModelSpec:
        return ModelSpec(
            role=self.role,
            backend=self.backend,
            model=self.model,
            path=self.path,
            checksum=self.checksum,
            params=dict(self.params),
        )

    def fingerprint(self) -> str:
        return self.spec().fingerprint()


class ThresholdsResource(dg.ConfigurableResource):
    """Numeric cut-offs that decide statuses and filters (`[thresholds]`)."""

    max_clip_seconds: float = Field(default=30.0, description="Utterances longer than this (by timestamps or media) get status too_long.", json_schema_extra={"read_by": ["meld_utterances"]})
    min_clip_seconds: float = Field(default=0.1, description="Utterances shorter than this (but above zero) get status too_short.", json_schema_extra={"read_by": ["meld_utterances"]})
    max_wer: float = Field(default=0.5, ge=0.0, description="transcript_alignment keeps a clip whose normalized WER (official vs Whisper) is at most this.", json_schema_extra={"read_by": ["transcript_alignment"]})
    min_seconds_per_word: float = Field(default=0.08, ge=0.0, description="transcript_alignment drops a clip with fewer voiced seconds per official word (cut too short for its text).", json_schema_extra={"read_by": ["transcript_alignment"]})
    max_seconds_per_word: float = Field(default=2.0, gt=0.0, description="transcript_alignment drops a clip with more voiced seconds per official word (speech beyond its text).", json_schema_extra={"read_by": ["transcript_alignment"]})
    max_shrink_share: float = Field(default=0.1, ge=0.0, le=1.0, description="The blocking check annotated_rows_kept fails when a split of an items table (meld_utterances, <corpus>_items) keeps fewer annotated rows than its previous version by more than this share (an empty, truncated or misplaced annotation file).")
    accept_shrink: bool = Field(default=False, description="Let annotated_rows_kept pass although a split shrank (as `--accept-shrink` does for one command).")
    max_filtered_share: float = Field(default=0.5, ge=0.0, le=1.0, description="The alignment check warns when a split loses a larger share of its usable clips than this.", json_schema_extra={"read_by": ["transcript_alignment"]})

    def fingerprint_for(self, asset: str) -> str | None:
        """Hash of the thresholds `asset` reads (fields name their readers in `read_by`)."""
        values = {
            name: getattr(self, name)
            for name, field in type(self).model_fields.items()
            if asset in (field.json_schema_extra or {}).get("read_by", ())
        }
        if not values:
            return None
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


class LabelRulesResource(dg.ConfigurableResource):
    """Rules for the label table's hard cases (`[labels]`); see storage/labels.py."""

    semeval_min_intensity: float = Field(default=0.5, ge=0.0, le=1.0, description="A SemEval-2018 EI-reg tweet counts as its emotion at or above this intensity (else status low_intensity).")
    goemotions_multi_group: Literal["exclude", "drop_neutral"] = Field(default="exclude", description="GoEmotions rows whose labels span two or more Ekman groups: `exclude` marks them ambiguous_label; `drop_neutral` first ignores neutral beside an emotion.")

    def rules(self) -> LabelRules:
        return LabelRules(**self.model_dump())

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class TextTrainingResource(dg.ConfigurableResource):
    """How the balanced text training set is drawn (`[text_training]`)."""

    per_emotion: int = Field(default=6200, gt=0, description="Texts per emotion in the balanced text training set (6.2k as in Wang & Beigi).")
    seed: int = Field(default=0, description="Random seed of the draw; the same seed and items give the same set.")
    oversample: bool = Field(default=False, description="Repeat texts of an emotion short of `per_emotion` until it is reached (off: take all and report the shortfall).")
    source_mix: Literal["even", "pooled"] = Field(default="even", description="`even`: each source gives an equal share of an emotion where it can; `pooled`: draw uniformly from all sources' texts.")

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class FacesResource(dg.ConfigurableResource):
    """Which detected faces count and how they are cut out (`[faces]`)."""

    min_size: float = Field(default=40.0, gt=0, description="Faces whose shorter box side is under this many pixels (in the original frame) are rejected (status small_face).")
    min_score: float = Field(default=0.9, ge=0.0, le=1.0, description="Faces the detector scores under this are rejected (status low_score).")
    crop_size: int = Field(default=160, ge=64, description="Side of the stored aligned face crops, in pixels.")
    crop_margin: float = Field(default=0.25, ge=0.0, le=1.0, description="Context kept around the face box in a crop, as a share of the box side on each side.")

    def options(self):
        from models.encoders.face_detect import CropGeometry, DetectionOptions

        return DetectionOptions(min_size=self.min_size, min_score=self.min_score,
                                crop=CropGeometry(self.crop_size, self.crop_margin))

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class GalleryResource(dg.ConfigurableResource):
    """Speaker galleries, their human review, and speaking-face matching (`[gallery]`).

    The gallery's fingerprint includes a hash of what the review file says, so editing the review
    marks the gallery and everything downstream of it stale, and nothing else; the match
    threshold versions only `speaking_faces`.
    """

    utterances: int = Field(default=20, gt=0, description="Utterances sampled per speaker (among those whose every sampled frame shows exactly one face) to build the speaker's reference face.")
    outlier_similarity: float = Field(default=0.9, ge=-1.0, le=1.0, description="A gallery face less cosine-similar than this to the speaker's robust centre is an outlier.")
    match_threshold: float = Field(default=0.9, ge=-1.0, le=1.0, description="Cosine similarity to the speaker's reference a face needs to be taken as the speaking face (0.9 suits dlib: its same-person cut-off, a distance of 0.6 between raw descriptors of norm about 1.4, is a cosine of about 0.91).")
    review_file: str = Field(default="", description="The face review file (crops to exclude or reassign); default: `<store>.face_review.toml` beside a local store.")

    def for_store(self, store_root: str) -> "GalleryResource":
        """This resource with the default review file beside `store_root` filled in."""
        from storage import uris

        if self.review_file or not uris.is_local(store_root):
            return self
        return GalleryResource(**{**self.model_dump(), "review_file": store_root + ".face_review.toml"})

    def review(self):
        from models.face_gallery import Review

        return Review.load(self.review_file or None)

    def fingerprint(self) -> str:
        from models.face_gallery import review_fingerprint

        # What the review says, never where its file lies: a store opened through another path stays fresh.
        fields = {**self.model_dump(exclude={"review_file"}), "review": review_fingerprint(self.review_file or None)}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    def fingerprint_for(self, asset: str) -> str:
        """`speaking_faces` reads only the match threshold; the gallery reads the rest."""
        from models.face_gallery import review_fingerprint

        if asset == "speaking_faces":
            fields: dict[str, Any] = {"match_threshold": self.match_threshold}
        else:
            fields = {**self.model_dump(exclude={"match_threshold", "review_file"}),
                      "review": review_fingerprint(self.review_file or None)}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def _default_prompts() -> dict[str, str]:
    from models.encoders.frame_emotion import DEFAULT_PROMPTS

    return dict(DEFAULT_PROMPTS)


class ZeroShotResource(dg.ConfigurableResource):
    """CLIP zero-shot frame emotion (`[zero_shot]`); the weights are `[encoders.frame_emotion]`."""

    every_nth_frame: int = Field(default=10, gt=0, description="Score every Nth video frame of a clip (10: about three per second at MELD's 23.976 fps).")
    prompts: dict[str, str] = Field(default_factory=_default_prompts, description="Emotion -> the text prompt its frames are scored against (default: MELD's seven, 'a photo of a happy person', ...).")

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


DEFAULT_MODALITY_SETS = [["text"], ["text", "speaker"], ["text", "face"], ["text", "speaker", "face"],
                         ["stage2_text", "stage2_speaker", "stage2_face"]]  # the hierarchy beside raw embeddings
# Every registered model family, at its default hyperparameters (models/fusion.py MODEL_MODULES).
DEFAULT_MODELS = ("concat_mlp", "context_gru", "kan_mlp", "mamba", "attention", "attention_context", "late_fusion")


class TrainingResource(dg.ConfigurableResource):
    """The training grid (`[training]`): what is trained on which features, how, and with which
    seeds. One training asset per (target, feature set, modality subset), partitioned by model x
    seed; `[training.models.<name>]` tables hold each model's hyperparameters."""

    targets: list[str] = Field(default_factory=lambda: ["emotion"], description="What the grid predicts: `emotion` (MELD's seven) and/or `sentiment` (negative, neutral, positive).")
    feature_sets: list[str] = Field(default_factory=lambda: ["official"], description="Which text the `text` modality embeds: `official` (the CSV's transcripts, text_embeddings) and/or `whisper` (Whisper's re-transcripts, whisper_text_embeddings).")
    modality_sets: list[list[str]] = Field(default_factory=lambda: [list(m) for m in DEFAULT_MODALITY_SETS], description="Modality subsets, each a list of text, speaker (speaker_embeddings), asr (asr_embeddings), face (speaking_faces), or stage-2 features stage2_text, stage2_speaker, stage2_asr, stage2_face (each modality's [stage2] head applied to those vectors; official text only).")
    models: dict[str, dict[str, Any]] = Field(default_factory=lambda: {m: {} for m in DEFAULT_MODELS}, description="Grid name -> hyperparameters of a registered model (`emostore models` lists them); `model = \"<registered name>\"` inside the table trains a variant under another name.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1], description="Seeds; each (model, seed) is one partition of every training asset.")
    options: dict[str, Any] = Field(default_factory=dict, description="Training options for every cell (models.train.TrainOptions: epochs, lr, weight_decay, batch_dialogues, patience, class_weights, class_weight_power, focal_gamma, label_smoothing, grad_clip, holdout_fraction).")
    threads: int = Field(default=1, ge=1, description="PyTorch threads per cell: small dialogue models gain little from more, and a second thread fighting for a busy core slowed a GRU epoch tenfold on 2 cores.")

    def model_entry(self, name: str) -> tuple[str, dict[str, Any]]:
        """(registered model name, hyperparameters) of the grid's model `name`."""
        params = dict(self.models[name])
        return params.pop("model", name), params

    def fingerprint(self) -> str:
        """Models and options: the seeds, targets and subsets name partitions and assets."""
        blob = json.dumps({"models": self.models, "options": self.options}, sort_keys=True, default=str)  # not threads: results do not depend on them
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class Stage2Resource(dg.ConfigurableResource):
    """Stage 2 of the hierarchy (`[stage2]`): per-modality heads trained on the unimodal corpora,
    scored per corpus and fold, and applied to every MELD utterance as stage-2 features."""

    modalities: list[str] = Field(default_factory=lambda: ["text", "speaker", "face"], description="Modalities with a head: text (text corpora), speaker and asr (audio corpora), face (face corpora); each gives the grid a `stage2_<modality>` feature.")
    model: str = Field(default="concat_mlp", description="The head whose features MELD gets: `concat_mlp` or `kan_mlp` (one modality in, its hidden layer and seven probabilities out).")
    params: dict[str, Any] = Field(default_factory=lambda: {"hidden": 128, "dropout": 0.2, "input_norm": True}, description="Hyperparameters of the feature head (`emostore models` lists them); `hidden` sets the stage-2 feature size (hidden + 7). `input_norm` (concat_mlp) normalizes the input: dlib's face vectors are of small scale and an MLP without it barely learns from them.")
    evaluate: list[str] = Field(default_factory=lambda: ["concat_mlp", "kan_mlp"], description="Head models scored per corpus and fold (and across corpora), each beside a majority-class baseline, into corpus_results.")
    seeds: list[int] = Field(default_factory=lambda: [0], description="Seeds of the scored heads; the feature head uses the first.")
    options: dict[str, Any] = Field(default_factory=lambda: {"epochs": 40, "batch_dialogues": 64, "patience": 6, "lr": 1e-3}, description="Training options of every head (models.train.TrainOptions; one item is one dialogue, so `batch_dialogues` counts items).")
    cross_corpus: bool = Field(default=True, description="Also score each corpus's head on the modality's other corpora, and a head pooled over the others on each corpus.")

    def train_options(self, seed: int):
        from models.train import TrainOptions

        return TrainOptions(**{**self.options, "seed": seed})

    def fingerprint_for(self, asset: str) -> str | None:
        """A head asset depends on its model, params, options and first seed; a scores asset on
        the models scored, seeds, options and cross_corpus; the features follow their head."""
        if asset.endswith("_head"):
            part = {"model": self.model, "params": self.params, "options": self.options, "seed": self.seeds[:1]}
        elif asset.endswith("_scores"):
            part = {"evaluate": self.evaluate, "seeds": self.seeds, "options": self.options,
                    "cross_corpus": self.cross_corpus}
        else:
            return None
        return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:12]


DEFAULT_POOLED = ["cremad", "ravdess", "savee", "tess", "emodb", "iemocap"]


class PldaResource(dg.ConfigurableResource):
    """LDA-PLDA scored by equal error rate (`[plda]`): which embeddings, which corpus pairs, and
    how an emotion left out of training is enrolled from the test corpus."""

    modality_sets: list[list[str]] = Field(default_factory=lambda: [["speaker"], ["speaker", "text"]], description="Modality subsets whose embeddings are concatenated, each a list of speaker (corpus_speaker_embeddings), asr (corpus_asr_embeddings), text (corpus_text_embeddings, text_corpus_embeddings).")
    pairs: list[list[str]] = Field(default_factory=lambda: [["cremad", "iemocap"], ["pooled", "iemocap"], ["iemocap", "iemocap"]], description="[train_on, test_on] corpus pairs; train_on `pooled` is every corpus of `pooled_corpora` but the tested one; a corpus paired with itself follows its folds.")
    pooled_corpora: list[str] = Field(default_factory=lambda: list(DEFAULT_POOLED), description="Corpora a `pooled` training set draws on (those with every modality of the subset).")
    unseen: str = Field(default="each", description="The emotion left out of training and enrolled from test items: `each` (every emotion in both corpora, in turn), one emotion, or `none`.")
    shots: list[int] = Field(default_factory=lambda: [5, 20], description="Test items the unseen emotion is enrolled from (k); those items are left out of every trial.")
    draws: int = Field(default=10, ge=1, description="Random draws of the k enrolment items; the EER is their mean.")
    seed: int = Field(default=0, description="Seed of the enrolment draws.")
    lda_dim: int = Field(default=0, ge=0, description="LDA directions kept before the PLDA; 0 = the training emotions less one.")
    lda_shrinkage: float = Field(default=0.1, ge=0.0, lt=1.0, description="Shrinkage of LDA's within-class scatter toward a scaled identity.")
    length_norm: bool = Field(default=True, description="Length-normalise the LDA projections before the PLDA.")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True, default=str).encode()).hexdigest()[:12]


class TwoStageResource(dg.ConfigurableResource):
    """Two-stage emotion recognition (`[two_stage]`): valence, arousal and dominance regressed from
    embeddings, then mapped to a category, beside direct classification on the same folds and seeds."""

    modality_sets: list[list[str]] = Field(default_factory=lambda: [["speaker"], ["text"], ["speaker", "text"]], description="Modality subsets stage 1 (and direct classification) reads, each a list of speaker, asr, text.")
    pairs: list[list[str]] = Field(default_factory=lambda: [["iemocap", "iemocap"]], description="[train_on, test_on] corpus pairs; a corpus paired with itself follows its folds (IEMOCAP: leave one session out); stage 1 trains on the items rated for valence, arousal and dominance.")
    pooled_corpora: list[str] = Field(default_factory=lambda: list(DEFAULT_POOLED), description="Corpora a `pooled` training set draws on.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], description="Seeds of stage 2 and of the direct classifier (stage 1, ridge, has none).")
    alphas: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0], description="Ridge penalties of stage 1; the one with the lowest dev RMSE is kept.")
    stage2_model: str = Field(default="concat_mlp", description="Stage 2, the three values to a category: a registered model (`emostore models`).")
    stage2_params: dict[str, Any] = Field(default_factory=lambda: {"hidden": 32}, description="Hyperparameters of the stage-2 model.")
    direct_model: str = Field(default="concat_mlp", description="Direct classification from the embeddings: a registered model.")
    direct_params: dict[str, Any] = Field(default_factory=dict, description="Hyperparameters of the direct model.")
    options: dict[str, Any] = Field(default_factory=lambda: {"epochs": 40, "batch_dialogues": 64, "patience": 6}, description="Training options of the direct classifier (models.train.TrainOptions; one item is one dialogue).")
    stage2_options: dict[str, Any] = Field(default_factory=lambda: {"epochs": 200, "lr": 0.01, "batch_dialogues": 64, "patience": 20, "weight_decay": 0.0}, description="Training options of stage 2 (three inputs: a tiny model that needs a larger step and more epochs).")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True, default=str).encode()).hexdigest()[:12]
