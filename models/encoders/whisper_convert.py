"""CTranslate2 Whisper -> openai-whisper checkpoint, so both backends can run the same weights.

CTranslate2 stores a Whisper model as one `model.bin` (binary format 6: named tensors plus
aliases) with the attention projections fused: self-attention query, key and value in one
`linear_0` of shape (3D, D), cross-attention key and value in one `linear_1` of shape (2D, D).
openai-whisper keeps them apart and has no key bias. The conversion splits the fused weights and
copies every tensor in its stored dtype (float16 stays float16), so it is lossless: the key bias
CTranslate2 stores is checked to be zero rather than dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import uuid
from pathlib import Path

import numpy as np

from models.encoders.whisper_weights import bundled_ct2_dir, bundled_identity, cache_root

CT2_BINARY_VERSION = 6
CONVERTER_VERSION = "1"  # bumped when the checkpoint this writes changes
# Order of CTranslate2's DataType enum (include/ctranslate2/types.h); bfloat16 has no numpy type.
CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)


class ConversionError(ValueError):
    """The CTranslate2 model cannot be converted losslessly."""


@dataclasses.dataclass
class Ct2Model:
    """The tensors of a CTranslate2 `model.bin`, aliases resolved."""

    name: str
    revision: int
    variables: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[name]

    def count_layers(self, stack: str) -> int:
        pattern = re.compile(rf"^{stack}/layer_(\d+)/")
        return 1 + max(int(m.group(1)) for v in self.variables if (m := pattern.match(v)))


def read_ct2(model_bin: str | os.PathLike) -> Ct2Model:
    """Parse a CTranslate2 `model.bin` into numpy arrays (views into the file's bytes)."""
    data = Path(model_bin).read_bytes()
    offset = 0

    def unpack(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = unpack("H")  # includes the trailing NUL
        text = data[offset : offset + length - 1].decode("utf-8")
        offset += length
        return text

    version = unpack("I")
    if version != CT2_BINARY_VERSION:
        raise ConversionError(f"{model_bin}: CTranslate2 binary version {version}, expected {CT2_BINARY_VERSION}")
    name, revision = string(), unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        var_name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        type_id, nbytes = unpack("B"), unpack("I")
        dtype = CT2_DTYPES[type_id] if type_id < len(CT2_DTYPES) else None
        if dtype is None:
            raise ConversionError(f"{model_bin}: {var_name} has a dtype (id {type_id}) numpy cannot hold")
        variables[var_name] = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize,
                                            offset=offset).reshape(shape)
        offset += nbytes
    for _ in range(unpack("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if offset != len(data):
        raise ConversionError(f"{model_bin}: {len(data) - offset} trailing bytes")
    return Ct2Model(name, revision, variables)


def model_dimensions(ct2: Ct2Model) -> dict[str, int]:
    """openai-whisper's `ModelDimensions` fields, read off the tensor shapes."""
    return {
        "n_mels": int(ct2["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(ct2["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(ct2["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": ct2.count_layers("encoder"),
        "n_vocab": int(ct2["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(ct2["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(ct2["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": ct2.count_layers("decoder"),
    }


def openai_state_dict(ct2: Ct2Model) -> dict[str, np.ndarray]:
    """openai-whisper state-dict names -> arrays, in the stored dtype."""
    if ct2.name != "WhisperSpec":
        raise ConversionError(f"a {ct2.name} is not a Whisper model")
    weights = [v for k, v in ct2.variables.items() if k.endswith("/weight")]
    if any(w.dtype not in (np.float16, np.float32) for w in weights):
        raise ConversionError("quantized (int8/int16) CTranslate2 weights cannot be converted losslessly")
    out = _StateDict(ct2)
    out.linear("encoder.conv1", "encoder/conv1")
    out.linear("encoder.conv2", "encoder/conv2")
    out.state["encoder.positional_embedding"] = ct2["encoder/position_encodings/encodings"]
    for i in range(ct2.count_layers("encoder")):
        out.block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    out.norm("encoder.ln_post", "encoder/layer_norm")

    out.state["decoder.token_embedding.weight"] = ct2["decoder/embeddings/weight"]
    out.state["decoder.positional_embedding"] = ct2["decoder/position_encodings/encodings"]
    for i in range(ct2.count_layers("decoder")):
        out.block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    out.norm("decoder.ln", "decoder/layer_norm")

    projection = ct2.variables.get("decoder/projection/weight")
    if projection is not None and not np.array_equal(projection, out.state["decoder.token_embedding.weight"]):
        raise ConversionError("output projection is not tied to the token embedding (openai-whisper ties them)")
    return out.state


class _StateDict:
    """openai-whisper's state dict, filled from CTranslate2's variables layer by layer."""

    def __init__(self, ct2: Ct2Model) -> None:
        self.ct2 = ct2
        self.state: dict[str, np.ndarray] = {}

    def linear(self, target: str, source: str, bias: bool = True) -> None:
        self.state[f"{target}.weight"] = self.ct2[f"{source}/weight"]
        if bias:
            self.state[f"{target}.bias"] = self.ct2[f"{source}/bias"]

    def norm(self, target: str, source: str) -> None:
        self.state[f"{target}.weight"] = self.ct2[f"{source}/gamma"]
        self.state[f"{target}.bias"] = self.ct2[f"{source}/beta"]

    def split_fused(self, target: str, source: str, parts: tuple[str, ...]) -> None:
        """A fused (len(parts) * D, D) projection into openai's separate query/key/value."""
        weight, bias = self.ct2[f"{source}/weight"], self.ct2[f"{source}/bias"]
        n_state = weight.shape[1]
        for i, part in enumerate(parts):
            rows = slice(i * n_state, (i + 1) * n_state)
            self.state[f"{target}.{part}.weight"] = weight[rows]
            if part == "key":
                if np.any(bias[rows] != 0):
                    raise ConversionError(f"{source}: non-zero key bias (openai-whisper has none)")
            else:
                self.state[f"{target}.{part}.bias"] = bias[rows]

    def block(self, target: str, source: str, cross: bool) -> None:
        self.norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        self.split_fused(f"{target}.attn", f"{source}/self_attention/linear_0", ("query", "key", "value"))
        self.linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        if cross:
            self.norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
            self.linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            self.split_fused(f"{target}.cross_attn", f"{source}/attention/linear_1", ("key", "value"))
            self.linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
        self.norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")
        self.linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        self.linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")


def alignment_heads(ct2_dir: Path, dims: dict[str, int]) -> np.ndarray | None:
    """(n_text_layer, n_text_head) bool mask of the cross-attention heads used for word timing."""
    config_file = ct2_dir / "config.json"
    if not config_file.is_file():
        return None
    pairs = json.loads(config_file.read_text()).get("alignment_heads") or []
    mask = np.zeros((dims["n_text_layer"], dims["n_text_head"]), dtype=bool)
    for layer, head in pairs:
        mask[layer, head] = True
    return mask if pairs else None


def convert(ct2_dir: str | os.PathLike, checkpoint: str | os.PathLike) -> Path:
    """Write the openai-whisper checkpoint of the CTranslate2 model in `ct2_dir` (atomically).

    The file loads with `whisper.load_model(path)`; it also carries `alignment_heads` (the
    CTranslate2 config's word-timing heads), which `whisper_openai.load_checkpoint` applies.
    """
    import torch

    ct2_dir, checkpoint = Path(ct2_dir), Path(checkpoint)
    ct2 = read_ct2(ct2_dir / "model.bin")
    dims = model_dimensions(ct2)
    state = {name: torch.from_numpy(array.copy()) for name, array in openai_state_dict(ct2).items()}
    payload = {"dims": dims, "model_state_dict": state}
    heads = alignment_heads(ct2_dir, dims)
    if heads is not None:
        payload["alignment_heads"] = torch.from_numpy(heads)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    temp = checkpoint.with_name(f".{checkpoint.name}.{uuid.uuid4().hex}")
    try:
        torch.save(payload, temp)
        os.replace(temp, checkpoint)
    finally:
        temp.unlink(missing_ok=True)
    return checkpoint


def bundled_checkpoint(name: str) -> Path:
    """The openai-whisper checkpoint of a bundled CTranslate2 model, converted once into the cache."""
    identity = bundled_identity(name).replace("+", "_")
    target = cache_root() / f"whisper-{name}-openai-{identity}-c{CONVERTER_VERSION}.pt"
    if not target.is_file():
        convert(bundled_ct2_dir(name), target)
    return target
