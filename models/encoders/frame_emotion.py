"""Zero-shot frame emotion with CLIP-ViT: each frame scored against one text prompt per emotion.

The late-fusion recipe this serves scores every Nth video frame with CLIP and averages the
per-frame emotion probabilities into the clip's visual vote. Weights come from a local
Hugging Face folder (`[encoders.frame_emotion] path`, holding config, weights, tokenizer and
preprocessor files) or a model name already in the local Hugging Face cache; nothing downloads,
and no package ships CLIP weights, so the role has no offline default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from models.spec import ModelSpec, WeightsUnavailable

# MELD's seven emotions, each with the prompt it is scored against.
DEFAULT_PROMPTS: dict[str, str] = {
    "anger": "a photo of an angry person",
    "disgust": "a photo of a disgusted person",
    "fear": "a photo of a frightened person",
    "joy": "a photo of a happy person",
    "neutral": "a photo of a person with a neutral expression",
    "sadness": "a photo of a sad person",
    "surprise": "a photo of a surprised person",
}


@dataclasses.dataclass(frozen=True)
class ZeroShotOptions:
    prompts: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_PROMPTS))
    batch_size: int = 16


@dataclasses.dataclass(frozen=True)
class ClipParams:
    """`params` of `[encoders.frame_emotion]`: none (prompts and frame rate are `[zero_shot]`)."""


# The params each backend takes (validated when the config loads).
PARAMS: dict[str, type] = {"clip": ClipParams}


class ClipFrameEmotion:
    """A CLIP model and its emotion prompts; `score(frames)` gives per-frame probabilities."""

    def __init__(self, model, processor, options: ZeroShotOptions = ZeroShotOptions(),
                 device: str = "cpu"):
        import torch

        if not options.prompts:
            raise ValueError("zero-shot emotion scoring needs at least one prompt")
        self.options = options
        self.emotions = tuple(options.prompts)
        self.device = device
        self._model = model.eval().to(device)
        self._processor = processor
        tokens = processor.tokenizer([options.prompts[e] for e in self.emotions], padding=True,
                                     return_tensors="pt").to(device)
        with torch.inference_mode():
            text = _pooled(self._model.get_text_features(**tokens))
        self._text = torch.nn.functional.normalize(text, dim=-1)  # (E, P)
        self._scale = float(self._model.logit_scale.detach().exp())

    @classmethod
    def from_spec(cls, spec: ModelSpec, options: ZeroShotOptions = ZeroShotOptions(),
                  device: str = "cpu") -> ClipFrameEmotion:
        from transformers import CLIPModel, CLIPProcessor

        source = spec.path or spec.model
        if not source:
            raise WeightsUnavailable(
                "[encoders.frame_emotion] names no CLIP weights: set path to a local Hugging Face "
                "folder (config.json, weights, tokenizer, preprocessor_config.json)"
            )
        if spec.path and not Path(spec.path).is_dir():
            raise WeightsUnavailable(f"CLIP weights folder not found: {spec.path}")
        try:
            model = CLIPModel.from_pretrained(source, local_files_only=True)
            processor = CLIPProcessor.from_pretrained(source, local_files_only=True)
        except OSError as exc:
            raise WeightsUnavailable(
                f"CLIP model {source!r} is not available offline ({exc}); download it once and "
                "set [encoders.frame_emotion] path to the folder"
            ) from exc
        return cls(model, processor, options, device)

    def score(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """frames: N x (H, W, 3) uint8 RGB -> (N, E) float32 probabilities over `self.emotions`."""
        import torch

        if not frames:
            return np.zeros((0, len(self.emotions)), np.float32)
        out = []
        size = self.options.batch_size
        with torch.inference_mode():
            for start in range(0, len(frames), size):
                batch = list(frames[start:start + size])
                pixels = self._processor.image_processor(batch, return_tensors="pt")["pixel_values"]
                image = _pooled(self._model.get_image_features(pixel_values=pixels.to(self.device)))
                image = torch.nn.functional.normalize(image, dim=-1)  # (B, P)
                logits = self._scale * image @ self._text.T  # (B, E)
                out.append(logits.softmax(dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def _pooled(output):
    """transformers 5 returns a model output whose pooler_output is the projected embedding."""
    return getattr(output, "pooler_output", output)


@dataclasses.dataclass(frozen=True)
class ScoredFrame:
    index: int  # the frame's position in the video stream
    time_s: float
    image: np.ndarray  # (H, W, 3) uint8 RGB


def every_nth_frame(path: str, n: int) -> list[ScoredFrame]:
    """Frames 0, n, 2n, ... of a clip's video stream, decoded in order."""
    import av

    assert n > 0, n
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for index, frame in enumerate(container.decode(stream)):
            if index % n == 0:
                time_s = float(frame.pts * stream.time_base) - start if frame.pts is not None else index / float(stream.average_rate or 1)
                out.append(ScoredFrame(index, time_s, frame.to_ndarray(format="rgb24")))
    return out
