"""Wrappers around pretrained encoders (ASR, speaker, sentence, face): one model per file."""

import importlib

# Encoder role -> the module whose `PARAMS` maps each of the role's backends to the dataclass of
# the params it takes (field names, types and defaults).
ROLE_MODULES: dict[str, str] = {
    "asr": "models.encoders.asr_backends",
    "speaker": "models.encoders.speaker",
    "text": "models.encoders.sentence",
    "face_detector": "models.encoders.face_detect",
    "face_embedder": "models.encoders.face_embed",
    "frame_emotion": "models.encoders.frame_emotion",
}


def backend_params(role: str) -> dict[str, type] | None:
    """Backend name -> params dataclass for an encoder role (None for a role declared nowhere)."""
    module = ROLE_MODULES.get(role)
    return dict(importlib.import_module(module).PARAMS) if module else None
