"""Speaker embeddings: a real actor's clips sit together, apart from synthetic voices; silence is
reported, not embedded; a transformers x-vector checkpoint loads from a local folder only."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoders.speaker import NoSpeech, load_speaker
from models.spec import ModelSpec, WeightsUnavailable
from tests.conftest import shared_data

SAMPLE_RATE = 16_000


@pytest.fixture(scope="module")
def resemblyzer():
    return load_speaker(ModelSpec("speaker", "resemblyzer"))


def synthetic_voices() -> list[np.ndarray]:
    """The same sentence in five espeak-ng voices (the demo corpus's kind of speaker)."""
    from pipelines.demo.speech import Voice, synthesize

    voices = [Voice("m1", pitch=40), Voice("m3"), Voice("m5", pitch=60), Voice("f1", pitch=60), Voice("f3", pitch=70)]
    return [synthesize("Kids are talking by the door", v, sample_rate=SAMPLE_RATE)[0].astype(np.float32) / 32768
            for v in voices]


@pytest.mark.realdata
def test_an_actors_clips_are_closer_to_each_other_than_to_synthetic_voices(resemblyzer):
    from storage.media import speech_audio

    folder = shared_data("audio", "ravdess_actor01")
    actor = np.stack(resemblyzer.embed([speech_audio(p).samples for p in sorted(folder.glob("*_audio.wav"))]))
    synthetic = np.stack(resemblyzer.embed(synthetic_voices()))
    assert actor.shape == (15, 256) and synthetic.shape == (5, 256)
    assert np.allclose(np.linalg.norm(actor, axis=1), 1.0, atol=1e-5)
    within, across = actor @ actor.T, actor @ synthetic.T
    n = len(actor)
    for i in range(n):
        others = np.delete(within[i], i)
        # every clip, even shouted ones, is on average closer to the actor's other clips than
        # to the closest synthetic voice
        assert others.mean() > across[i].max(), (i, others.mean(), across[i].max())
        centroid = actor[np.arange(n) != i].mean(axis=0)
        centroid /= np.linalg.norm(centroid)
        assert actor[i] @ centroid > (synthetic @ centroid).max()


def test_silence_and_empty_clips_are_no_speech(resemblyzer):
    out = resemblyzer.embed([np.zeros(SAMPLE_RATE, np.float32), np.zeros(0, np.float32)])
    assert isinstance(out[0], NoSpeech) and isinstance(out[1], NoSpeech)
    assert "silence" in str(out[0])


def test_transformers_xvector_loads_from_a_local_folder_only(tmp_path):
    """A small WavLM x-vector with random weights, saved locally: the backend's loading,
    batching and output shape (identity quality is resemblyzer's test above)."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1),
        xvector_output_dim=24, num_buckets=32, max_bucket_distance=64,
    )
    folder = tmp_path / "wavlm-xvector"
    WavLMForXVector(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, return_attention_mask=True).save_pretrained(folder)

    encoder = load_speaker(ModelSpec("speaker", "transformers", path=str(folder), params={"batch_size": 2}))
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8000, 24000, 16000)] + [np.zeros(0, np.float32)]
    out = encoder.embed(clips)
    assert encoder.dim == 24
    assert [v.shape for v in out[:3]] == [(24,)] * 3
    assert all(abs(np.linalg.norm(v) - 1.0) < 1e-5 for v in out[:3])
    assert isinstance(out[3], NoSpeech)

    with pytest.raises(WeightsUnavailable, match="path"):
        load_speaker(ModelSpec("speaker", "transformers", model="microsoft/wavlm-base-plus-sv"))
    with pytest.raises(WeightsUnavailable, match="no config.json"):
        load_speaker(ModelSpec("speaker", "transformers", path=str(tmp_path)))
