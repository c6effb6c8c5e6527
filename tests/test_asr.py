"""Whisper: the CTranslate2 -> openai-whisper conversion is lossless and both backends agree on
real audio; the bundled ASR transcribes real RAVDESS speech; the short-clip method's batching,
token cap and re-run; ASR embeddings; the alignment measures."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from models.alignment import AlignmentLimits, align, error_rates, normalize, verdict
from models.encoders.asr import (
    ENCODER_FRAMES_PER_SECOND,
    SAMPLE_RATE,
    AsrConfigError,
    AsrOptions,
    Transcript,
    WhisperAsr,
    frames_covering,
)
from models.encoders.asr_backends import load_asr
from models.spec import ModelSpec, WeightsUnavailable
from tests.conftest import shared_data

RAVDESS = ("audio", "ravdess_actor01")
STATEMENT = "Kids are talking by the door"


def ravdess_clips() -> dict[str, np.ndarray]:
    from storage.media import speech_audio

    folder = shared_data(*RAVDESS)
    return {p.name: speech_audio(p).samples for p in sorted(folder.iterdir()) if p.suffix in (".wav", ".mp4")}


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    return ravdess_clips()


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """One model cache for the module (conftest gives each test its own XDG cache)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def shared_cache(model_cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(model_cache))


def tiny(backend: str, **params) -> ModelSpec:
    return ModelSpec("asr", backend, "tiny.en", params=params)


# -- conversion --------------------------------------------------------------------------------
def test_conversion_copies_every_tensor_bit_for_bit_and_splits_fused_attention(shared_cache):
    import torch

    from models.encoders.whisper_convert import bundled_checkpoint, read_ct2
    from models.encoders.whisper_weights import bundled_ct2_dir

    ct2 = read_ct2(bundled_ct2_dir("tiny.en") / "model.bin")
    checkpoint = torch.load(bundled_checkpoint("tiny.en"), weights_only=True)
    state = checkpoint["model_state_dict"]
    assert checkpoint["dims"] == {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
        "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4,
    }
    assert all(t.dtype == torch.float16 for t in state.values())  # fp16 in, fp16 out
    # the fused self-attention projection is exactly query | key | value stacked
    fused = ct2["encoder/layer_2/self_attention/linear_0/weight"]
    split = torch.cat([state[f"encoder.blocks.2.attn.{p}.weight"] for p in ("query", "key", "value")])
    assert np.array_equal(split.numpy(), fused)
    assert "encoder.blocks.2.attn.key.bias" not in state  # openai-whisper's key has no bias
    kv = ct2["decoder/layer_3/attention/linear_1/weight"]
    split = torch.cat([state[f"decoder.blocks.3.cross_attn.{p}.weight"] for p in ("key", "value")])
    assert np.array_equal(split.numpy(), kv)
    # every CTranslate2 weight reappears with identical bytes somewhere in the checkpoint
    stored = {t.numpy().tobytes() for t in state.values()}
    for name, array in ct2.variables.items():
        if array.dtype == np.float16 and "linear_0" not in name and "attention/linear_1" not in name:
            assert array.tobytes() in stored, name
    assert checkpoint["alignment_heads"].sum() == 8  # the word-timing heads from config.json


@pytest.mark.realdata
def test_both_backends_compute_the_same_encoder_output_on_real_speech(clips, shared_cache):
    """The converted checkpoint in PyTorch and the CTranslate2 original (float32, no
    quantization) agree on the same log-mel input, in the full window and a trimmed one."""
    import ctranslate2
    import torch
    import whisper

    from models.encoders.whisper_convert import bundled_checkpoint
    from models.encoders.whisper_openai import load_checkpoint
    from models.encoders.whisper_weights import bundled_ct2_dir

    openai_model = load_checkpoint(bundled_checkpoint("tiny.en"))
    ct2_model = ctranslate2.models.Whisper(str(bundled_ct2_dir("tiny.en")), device="cpu", compute_type="float32")
    audio = clips["01-01-01-01-01-01-01.wav"]
    for seconds in (30, 10):
        padded = np.zeros(seconds * SAMPLE_RATE, np.float32)
        padded[: audio.size] = audio[: padded.size]
        mel = whisper.log_mel_spectrogram(torch.from_numpy(padded))[None]
        with torch.no_grad():
            ours = openai_model.encoder(mel).numpy()
        theirs = np.asarray(ct2_model.encode(ctranslate2.StorageView.from_array(mel.numpy())))
        assert ours.shape == theirs.shape == (1, seconds * ENCODER_FRAMES_PER_SECOND, 384)
        scale = np.abs(theirs).max()
        assert np.abs(ours - theirs).max() < 1e-4 * scale, (seconds, np.abs(ours - theirs).max(), scale)
        cosine = (ours * theirs).sum(-1) / (np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1))
        assert cosine.min() > 0.99999


def test_quantized_or_foreign_models_are_refused(tmp_path):
    from models.encoders.whisper_convert import ConversionError, Ct2Model, openai_state_dict

    int8 = Ct2Model("WhisperSpec", 3, {"encoder/conv1/weight": np.zeros((2, 2, 3), np.int8)})
    with pytest.raises(ConversionError, match="quantized"):
        openai_state_dict(int8)
    with pytest.raises(ConversionError, match="not a Whisper"):
        openai_state_dict(Ct2Model("TransformerSpec", 1, {}))


# -- transcription on real speech --------------------------------------------------------------
@pytest.mark.realdata
def test_bundled_asr_transcribes_the_ravdess_statement(clips, shared_cache):
    asr = load_asr(tiny("faster-whisper"))
    names = list(clips)
    transcripts = dict(zip(names, asr.transcribe([clips[n] for n in names])))
    wavs = [n for n in names if n.endswith(".wav")]
    assert len(wavs) == 16
    wers = {n: error_rates(normalize(STATEMENT), normalize(transcripts[n].text))[0] for n in wavs}
    assert sum(w <= 0.2 for w in wers.values()) >= 14, wers
    mp4 = "01-01-01-01-01-01-01.mp4"
    assert error_rates(normalize(STATEMENT), normalize(transcripts[mp4].text))[0] <= 0.2, transcripts[mp4]
    for t in transcripts.values():
        assert t.language == "en"
        assert -1.0 < t.avg_logprob <= 0.0
        assert 0.0 <= t.no_speech_prob < 0.5
        assert 0.0 < t.compression_ratio < 2.4


@pytest.mark.realdata
def test_openai_backend_runs_the_same_weights_to_the_same_words(clips, shared_cache):
    names = ["01-01-01-01-01-01-01_audio.wav", "01-01-05-02-01-01-01_audio.wav", "01-01-01-01-01-01-01.mp4"]
    faster = load_asr(tiny("faster-whisper", compute_type="float32", beam_size=1)).transcribe([clips[n] for n in names])
    openai = load_asr(tiny("openai-whisper", beam_size=1)).transcribe([clips[n] for n in names])
    for a, b in zip(faster, openai):
        assert normalize(a.text) == normalize(b.text) == normalize(STATEMENT)
        assert abs(a.avg_logprob - b.avg_logprob) < 0.05
        assert abs(a.no_speech_prob - b.no_speech_prob) < 0.05


@pytest.mark.realdata
def test_bundled_base_model_assembles_from_its_two_packages_once(clips, shared_cache):
    from models.encoders.whisper_weights import bundled_ct2_dir

    folder = bundled_ct2_dir("base")
    assert (folder / "model.bin").stat().st_size == 2 * 72608766
    assert bundled_ct2_dir("base") == folder  # built once, then found
    asr = load_asr(ModelSpec("asr", "faster-whisper", "base", params={"language": "en"}))
    (result,) = asr.transcribe([clips["01-01-03-01-01-01-01_audio.wav"]])
    assert normalize(result.text) == normalize(STATEMENT)


@pytest.mark.parametrize("backend", ["faster-whisper", "openai-whisper"])
def test_a_model_that_needs_a_download_fails_saying_how_to_provide_it(backend):
    with pytest.raises(WeightsUnavailable, match="path"):
        load_asr(ModelSpec("asr", backend, "small.en"))


def test_unknown_backend_and_params_are_named():
    with pytest.raises(AsrConfigError, match="whisperx"):
        load_asr(ModelSpec("asr", "whisperx", "tiny.en"))
    with pytest.raises(AsrConfigError, match="beams"):
        AsrOptions.from_params({"beams": 3})


# -- the short-clip method ---------------------------------------------------------------------
def test_token_cap_and_window_follow_the_clip_length():
    options = AsrOptions()
    assert options.token_cap(2.0) == 24 + 16
    assert options.token_cap(60.0) == 448 - 8  # never beyond the decoder's context
    assert options.window_seconds(3.2) == 10.0  # shorter windows loop and cut endings
    assert options.window_seconds(12.1) == 13.0
    assert options.window_seconds(41.0) == 30.0
    assert frames_covering(3.31) == 166
    assert frames_covering(0.0) == 1


class ScriptedAsr(WhisperAsr):
    """A stand-in backend whose fast decode repeats itself on clips longer than 4 s: the
    method's batching, cap and re-run logic is pure Python, tested here without a model (the
    real backends are tested above)."""

    english_only = True
    width = 4

    def __init__(self, options: AsrOptions):
        super().__init__(options)
        self.batches_seen: list[tuple[float, int, int]] = []
        self.reruns: list[int] = []

    def decode_batch(self, clips, window_seconds, max_tokens):
        self.batches_seen.append((window_seconds, max_tokens, len(clips)))
        out = []
        for clip in clips:
            runaway = clip.size > 4 * SAMPLE_RATE
            text = "stop " * max_tokens if runaway else "hello there"
            out.append(Transcript(text.strip(), "en", -0.2, 0.1, 5.0 if runaway else 1.0,
                                  max_tokens if runaway else 2))
        return out

    def transcribe_default(self, clip, max_tokens):
        self.reruns.append(clip.size)
        return Transcript("hello there friend", "en", -0.3, math.nan, 1.1, 3)

    def encode_window(self, clips, window_seconds):
        frames = int(window_seconds * ENCODER_FRAMES_PER_SECOND)
        return np.stack([np.full((frames, self.width), c.size, np.float32) for c in clips])


def test_clips_batch_by_their_own_window_and_suspects_are_rerun():
    asr = ScriptedAsr(AsrOptions(batch_size=2))
    lengths = [1.0, 5.0, 2.0, 12.5, 3.0, 45.0]
    clips = [np.ones(int(s * SAMPLE_RATE), np.float32) for s in lengths]
    out = asr.transcribe(clips)
    # the four clips under 10 s share the 10 s window (batches of two, shortest first), 12.5 s
    # has its own 13 s window, and 45 s is beyond Whisper's window: no fast decode
    # (window, token cap of the batch's longest clip, clips)
    assert asr.batches_seen == [(10.0, 2 * 12 + 16, 2), (10.0, 5 * 12 + 16, 2), (13.0, 150 + 16, 1)]
    assert [t.text for t in out][:1] == ["hello there"]
    # the runaway clips (5 s, 12.5 s) were re-run the default way; the 45 s one went there directly
    assert sorted(asr.reruns) == sorted(int(s * SAMPLE_RATE) for s in (5.0, 12.5, 45.0))
    assert [t.rerun for t in out] == [False, True, False, True, False, False]
    assert out[1].no_speech_prob == 0.1  # kept from the fast decode when the re-run has none


def test_encoder_frames_keep_only_the_clip_and_do_not_depend_on_batch_mates():
    asr = ScriptedAsr(AsrOptions(batch_size=3))
    clips = [np.ones(int(s * SAMPLE_RATE), np.float32) for s in (0.5, 3.31, 12.0)]
    frames = asr.encoder_frames(clips)
    assert [f.shape for f in frames] == [(25, 4), (166, 4), (600, 4)]
    alone = asr.encoder_frames([clips[1]])
    assert np.array_equal(alone[0], frames[1])


@pytest.mark.realdata
def test_asr_embeddings_of_real_speech(clips, shared_cache):
    from models.encoders.asr_embedding import AsrEmbedder, voiced_frame_mask

    mask = voiced_frame_mask(10, [(0.05, 0.11)])
    assert mask.tolist() == [False, False, True, True, True, False, False, False, False, False]
    names = ["01-01-01-01-01-01-01_audio.wav", "01-01-01-01-01-01-01.wav", "01-01-05-02-01-01-01_audio.wav"]
    plain = AsrEmbedder(load_asr(tiny("faster-whisper")))
    trimmed = AsrEmbedder(load_asr(tiny("faster-whisper", embedding_vad_trim=True)))
    a = np.stack(plain.embed([clips[n] for n in names]))
    b = np.stack(trimmed.embed([clips[n] for n in names]))
    assert a.shape == b.shape == (3, 384) and plain.dim == 384
    assert np.isfinite(a).all() and np.isfinite(b).all()
    assert not np.allclose(a, b)  # RAVDESS clips start with a second of silence: trimming matters

    def cosine(x, y):
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    # the near-identical twin files embed alike, the same sentence angrily less so
    assert cosine(b[0], b[1]) > 0.99
    assert cosine(b[0], b[1]) > cosine(b[0], b[2])


# -- alignment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("official, heard, wer", [
    ("Okay, I'm gonna go!", "OK, I am going to go.", 0.0),
    ("Twenty-five bucks?", "25 bucks", 0.0),
    ("Kids are talking by the door.", "Kids are walking by the door", 1 / 6),
    ("Hi.", "", 1.0),
    ("Mr. Geller, uh, hi...", "Mister Geller, hi.", 0.0),
])
def test_error_rates_on_normalized_text(official, heard, wer):
    assert align(official, heard, 1.0).wer == pytest.approx(wer)


def test_verdict_uses_wer_and_voiced_seconds_per_word():
    limits = AlignmentLimits(max_wer=0.5, min_seconds_per_word=0.08, max_seconds_per_word=2.0)
    good = align("Kids are talking by the door.", "Kids are talking by the door", 1.8)
    assert verdict(good, limits) == (True, "")
    assert good.seconds_per_word == pytest.approx(0.3)
    wrong_words = align("Kids are talking by the door.", "Dogs sit near a window", 1.8)
    assert not verdict(wrong_words, limits)[0] and "WER" in verdict(wrong_words, limits)[1]
    cut_short = align("Kids are talking by the door.", "Kids are talking by the door", 0.2)
    assert "too short" in verdict(cut_short, limits)[1]
    too_much = align("Hi.", "Hi", 6.0)
    assert "more speech" in verdict(too_much, limits)[1]
    empty = align("(laughs)", "", 0.0)
    assert empty.reference_words == 0 and math.isnan(empty.seconds_per_word)
    assert verdict(empty, limits) == (False, "the official transcript has no words to align")


@pytest.mark.realdata
def test_voiced_seconds_of_real_speech_and_silence(clips):
    from models.encoders.vad import speech_spans, voiced_seconds

    spans = speech_spans(clips["01-01-01-01-01-01-01_audio.wav"])
    assert len(spans) == 1 and 0.8 < spans[0][0] < 1.3 and 1.2 < spans[0][1] - spans[0][0] < 1.8
    assert voiced_seconds(np.zeros(3 * SAMPLE_RATE, np.float32)) == 0.0
    assert voiced_seconds(np.zeros(0, np.float32)) == 0.0


def test_transcript_suspect_rules():
    options = AsrOptions()
    fine = Transcript("kids are talking by the door", "en", -0.1, 0.1, 0.8, 7)
    assert not fine.suspect(3.3, options)
    assert dataclasses.replace(fine, compression_ratio=3.0).suspect(3.3, options)
    assert dataclasses.replace(fine, avg_logprob=-1.5).suspect(3.3, options)
    assert dataclasses.replace(fine, tokens=30).suspect(3.3, options)  # > 6 tokens per second
    assert dataclasses.replace(fine, tokens=options.token_cap(1.0)).suspect(1.0, options)


# -- packing short clips into one window ---------------------------------------------------------
def test_packed_words_go_to_the_clip_their_aligned_span_overlaps_most():
    from models.encoders.asr import Word, place_words

    starts, seconds = [0.0, 3.0, 6.0], [2.0, 2.0, 1.5]  # clips at 0-2, 3-5, 6-7.5 s; gaps between
    words = [
        Word(" check", 0.0, 0.7, 1, -0.1),
        Word(" fridge", 0.9, 2.9, 1, -0.1),  # stretched over the silence after its clip
        Word(".", 2.9, 3.2, 1, -0.1),  # punctuation aligned into the next clip: goes with "fridge"
        Word(" okay", 2.4, 5.8, 1, -0.1),  # starts in the gap, mostly over the second clip
        Word(" yes", 5.5, 5.9, 1, -0.1),  # in the gap, nearer the third clip
        Word(" fine", 6.2, 9.0, 1, -0.1),
    ]
    placed = place_words(words, starts, seconds)
    assert ["".join(w.text for w in clip) for clip in placed] == [" check fridge.", " okay", " yes fine"]


class ScriptedPackingAsr(ScriptedAsr):
    """A stand-in backend that packs: each clip is a constant signal whose value names it, and
    `decode_words` finds each run of that value in the window and says "clip<value>" there,
    except for value 9, which it cannot hear (a clip whose words cannot be placed)."""

    def __init__(self, options: AsrOptions):
        super().__init__(options)
        self.windows_seen: list[tuple[float, int]] = []

    def decode_words(self, windows, window_seconds, max_tokens, content_seconds):
        from models.encoders.asr import WindowWords, Word

        out = []
        for window, content in zip(windows, content_seconds):
            assert window.size == int(window_seconds * SAMPLE_RATE) and content <= window_seconds
            values = np.round(window).astype(int)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], values, [0]])))  # run starts and ends
            runs = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if values[a] != 0]
            self.windows_seen.append((window_seconds, len(runs)))
            words = [Word(f" clip{values[a]}", a / SAMPLE_RATE, b / SAMPLE_RATE, 1, -0.2)
                     for a, b in runs if values[a] != 9]
            out.append(WindowWords(words, "en", 0.05))
        return out


def test_a_packed_window_gives_each_clip_its_own_text_and_an_unplaced_clip_is_decoded_alone():
    asr = ScriptedPackingAsr(AsrOptions(batch_size=8))
    lengths = [2.0, 1.0, 2.5, 1.0, 8.0, 2.0]  # named by their values; value 9 says nothing
    values = [1, 2, 3, 9, 5, 6]
    clips = [np.full(int(s * SAMPLE_RATE), v, np.float32) for s, v in zip(lengths, values)]
    out = asr.transcribe(clips)
    # windows of 10 s with room for 6 s of clips 1 s apart: (1.0, 1.0, 2.0) and (2.0, 2.5);
    # the 8 s clip does not fit with another and is decoded alone
    assert asr.windows_seen == [(10.0, 3), (10.0, 2)]
    # the 8 s clip runs away in its own decode and is re-run the default way
    assert [t.text for t in out] == ["clip1", "clip2", "clip3", "hello there", "hello there friend", "clip6"]
    # the unplaced 1 s clip and the 8 s clip went to the per-clip decode, in one 10 s batch
    assert asr.batches_seen == [(10.0, 8 * 12 + 16, 2)]
    assert out[0].no_speech_prob == 0.05 and out[0].tokens == 1 and out[0].avg_logprob == pytest.approx(-0.1)
    assert [t.rerun for t in out] == [False, False, False, False, True, False]
    unpacked = ScriptedPackingAsr(AsrOptions(pack=False))
    assert [t.text for t in unpacked.transcribe(clips)][:4] == ["hello there"] * 4
    assert unpacked.windows_seen == []


def test_packs_leave_room_for_the_gaps_and_the_trailing_silence():
    asr = ScriptedPackingAsr(AsrOptions(min_window_seconds=10.0, pack_gap_seconds=1.0, pack_tail_seconds=4.0))
    # room 6 s: 2.0 + 1 + 2.0 = 5 fits, a third 2.0 s clip would need 8; 5.5 s never shares
    assert asr.packs([2.0, 5.5, 2.0, 2.0, 1.9]) == [[4, 0], [2, 3]]
    assert asr.packs([3.0, 3.0]) == []  # 3 + 1 + 3 = 7 > 6: each alone


@pytest.mark.parametrize("backend", ["faster-whisper", "openai-whisper"])
def test_log_mel_over_the_clip_only_equals_the_padded_window(backend, shared_cache):
    """The short-cut features (computed over the clip and a little silence, the padding's frames
    copied) are those of the whole zero-padded window, and encoder output does not depend on
    how many clips go through the encoder together."""
    import torch
    import whisper

    from models.encoders.asr import pad_to

    asr = load_asr(tiny(backend, encoder_batch_size=1))
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, int(s * SAMPLE_RATE)).astype(np.float32) for s in (0.3, 2.05, 9.99, 12.5)]
    for seconds in (10.0, 13.0):
        for clip in clips:
            full = whisper.log_mel_spectrogram(torch.from_numpy(pad_to(clip, seconds))).numpy()[:, : int(seconds * 100)]
            if backend == "faster-whisper":
                full = asr.whisper.feature_extractor(pad_to(clip, seconds), padding=0)[:, : int(seconds * 100)]
                ours = asr._features([clip], seconds)[0]
            else:
                ours = asr._mel([clip], seconds)[0].numpy()
            assert ours.shape == full.shape
            assert np.abs(ours - full).max() < 1e-5
    one_at_a_time = asr.encode_window(clips[:3], 10.0)
    together = load_asr(tiny(backend, encoder_batch_size=8)).encode_window(clips[:3], 10.0)
    assert one_at_a_time.shape == (3, 500, 384)
    assert np.abs(one_at_a_time - together).max() < 0.05 * np.abs(together).max()


@pytest.mark.realdata
@pytest.mark.parametrize("backend", ["faster-whisper", "openai-whisper"])
def test_two_real_statements_packed_in_one_window_each_keep_their_own_words(clips, backend, shared_cache):
    """Two real recordings of one sentence (RAVDESS actor 01, calm and angry), cut to their speech
    (2.4 s), share one window and come back each with the sentence once (identical sentences
    side by side are where a packed decode drops or doubles one)."""
    cut = slice(int(0.6 * SAMPLE_RATE), int(3.0 * SAMPLE_RATE))
    calm, angry = clips["01-01-01-01-01-01-01_audio.wav"][cut], clips["01-01-05-02-01-01-01_audio.wav"][cut]
    asr = load_asr(tiny(backend))
    assert asr.packs_clips and asr.packs([2.4, 2.4]) == [[0, 1]]
    alone = []
    decode_batch = asr.decode_batch
    asr.decode_batch = lambda batch, *args: alone.append(len(batch)) or decode_batch(batch, *args)
    out = asr.transcribe([calm, angry])
    assert alone == []  # both came from the shared window
    for transcript in out:
        assert error_rates(normalize(STATEMENT), normalize(transcript.text))[0] <= 0.2, out
        assert not transcript.rerun and transcript.tokens < 12
