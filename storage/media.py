"""Clip media without Dagster: probing containers, 16 kHz speech audio, 1 fps frames, media files.

Everything decodes with PyAV (FFmpeg inside the wheel). Failures surface as `MediaProblem`, which
carries the status a row should get and a human reason, so callers turn bad clips into rows.

Speech channel choice. A clip may carry several channels (MELD's are 5.1), and the speech is not
always in the same one. Each channel, resampled to 16 kHz, gets a *speech score* in dB:

    score = band_dbfs + 10*log10(speech_ratio) + 10*log10(modulation)

`band_dbfs` is the power in the telephone speech band (300-3400 Hz), `speech_ratio` the share of
the channel's power inside that band, and `modulation` the coefficient of variation of the band's
energy over 32 ms frames (speech rises and falls with its syllables and pauses: about 1 or more;
steady noise or hum: about 0.1). Silence and faint noise lose on power, rumble and hiss on the
ratio, steady noise of any level on the modulation. The best channel is used; channels within
`MIX_MARGIN_DB` of the best are averaged instead (dual-mono stereo gives a mix of identical
channels). Audio whose best band power is under `SILENCE_DBFS` (-70 dB; quiet real speech such as
RAVDESS sits near -50 dB) is silent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from storage import uri as uris
from storage.faults import fault_point
from storage.status import Status

SAMPLE_RATE = 16_000  # Hz: what the speech models (Whisper, resemblyzer, silero) take
SPEECH_BAND_HZ = (300.0, 3400.0)  # the telephone band, where most speech energy lies
MIX_MARGIN_DB = 1.0  # channels this close to the best one carry the same speech: average them
ENVELOPE_FRAME_S = 0.032  # syllables last 100-300 ms: 32 ms frames resolve their rise and fall
MIN_MODULATION = 0.01  # floor for the variation term (a constant signal would give -inf)
SILENCE_DBFS = -70.0  # best speech-band power below this (full scale = 0 dB) counts as silent
JPEG_QUALITY = 90
_EPS = 1e-12


class MediaProblem(Exception):
    """A clip that cannot give what was asked; `status` is what its row should say."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- files -------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 of a file's bytes (first `length` hex digits), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def media_exists(uri: str) -> bool:
    fs, path = uris.filesystem(uri)
    return fs.get_file_info(path).type.name == "File"


def write_media(uri: str, data: bytes) -> None:
    """Write a derived media file; locally through a temporary name and a rename, so a reader
    never sees half a file under the real name."""
    if uris.is_local(uri):
        path = Path(uris.local_path(uri))
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}{path.suffix}")
        fault_point(f"{_kind(path)}.before_write")
        with open(temp, "wb") as sink:
            half = len(data) // 2
            sink.write(data[:half])
            fault_point(f"{_kind(path)}.mid_write")
            sink.write(data[half:])
        fault_point(f"{_kind(path)}.before_rename")
        os.replace(temp, path)
        fault_point(f"{_kind(path)}.after_rename")
        return
    fs, path = uris.filesystem(uri)
    with fs.open_output_stream(path) as sink:
        sink.write(data)


def _kind(path: Path) -> str:
    """The fault-point family of a derived file: `checkpoint` under checkpoints/, else `media`."""
    return "checkpoint" if "checkpoints" in path.parts else "media"


def read_media(uri: str) -> bytes:
    fs, path = uris.filesystem(uri)
    with fs.open_input_file(path) as handle:
        return handle.read()


# -- probing -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MediaFacts:
    """What a container says about itself (read from its header, nothing decoded)."""

    duration_s: float | None
    video_codec: str | None
    fps: float | None
    width: int | None
    height: int | None
    audio_codec: str | None
    audio_channels: int | None
    audio_layout: str | None
    audio_sample_rate: int | None


def _open(path: str | os.PathLike):
    import av

    try:
        return av.open(str(path))
    except FileNotFoundError:
        raise MediaProblem(Status.MISSING_MEDIA, f"clip {path} does not exist") from None
    except av.error.FFmpegError as exc:
        raise MediaProblem(Status.CORRUPT_MEDIA, f"cannot open {Path(path).name}: {_open_failure(path, exc)}") from None


def _open_failure(path: str | os.PathLike, exc: Exception) -> str:
    """FFmpeg's own words for why a file does not open (e.g. "moov atom not found").

    PyAV keeps FFmpeg's log off by default; it is switched on only to re-open a failed file."""
    import av.logging

    detail = ""
    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    try:
        av.logging.set_level(av.logging.ERROR)
        av.logging.set_skip_repeated(False)  # the same failure on another file must be told too
        with av.logging.Capture() as logs:
            try:
                av.open(str(path)).close()
            except av.error.FFmpegError:
                pass
        detail = "; ".join(str(line[2]).strip() for line in logs if len(line) > 2 and str(line[2]).strip())
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)
    return _ffmpeg_message(exc) + (f" ({detail})" if detail else "")


def _ffmpeg_message(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)  # without the file name PyAV appends


def probe(path: str | os.PathLike) -> MediaFacts:
    """Container facts of a clip; MediaProblem(missing_media / corrupt_media) if it has none."""
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise MediaProblem(Status.CORRUPT_MEDIA, f"{Path(path).name} has no audio or video stream")
        duration = container.duration / 1_000_000 if container.duration else None
        if duration is None:
            durations = [_stream_seconds(s) for s in (video, audio) if s is not None]
            duration = max((d for d in durations if d), default=None)
        fps = None
        if video is not None and video.average_rate:
            fps = float(video.average_rate)
        return MediaFacts(
            duration_s=duration,
            video_codec=video.codec_context.name if video is not None else None,
            fps=fps,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            audio_layout=audio.codec_context.layout.name if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        )


def _stream_seconds(stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


# -- audio -------------------------------------------------------------------------------------
def decode_channels(path: str | os.PathLike, rate: int = SAMPLE_RATE) -> tuple[np.ndarray, str, int]:
    """Every audio channel resampled to `rate`: (channels (C, N) float32, layout name, source rate).

    MediaProblem(no_audio) when the clip has no audio stream or it decodes to nothing,
    corrupt_media when decoding fails.
    """
    import av

    with _open(path) as container:
        if not container.streams.audio:
            raise MediaProblem(Status.NO_AUDIO, f"{Path(path).name} has no audio stream")
        stream = container.streams.audio[0]
        layout = stream.codec_context.layout.name
        source_rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # the resampler keeps its own clock; gaps are not ours to fill
                chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray() for f in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise MediaProblem(Status.CORRUPT_MEDIA, f"audio of {Path(path).name} fails to decode: {_ffmpeg_message(exc)}") from None
    if not chunks:
        raise MediaProblem(Status.NO_AUDIO, f"the audio stream of {Path(path).name} holds no samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    assert samples.shape[0] == channels, (samples.shape, channels)
    return samples, layout, source_rate


@dataclasses.dataclass(frozen=True)
class ChannelMeasure:
    """The speech measure of one channel (see the module docstring)."""

    band_dbfs: float  # power in 300-3400 Hz, dB relative to full scale
    speech_ratio: float  # share of the channel's power inside that band, 0..1
    modulation: float  # coefficient of variation of the band's energy over 32 ms frames

    @property
    def score_db(self) -> float:
        return (self.band_dbfs + 10 * math.log10(max(self.speech_ratio, _EPS))
                + 10 * math.log10(max(self.modulation, MIN_MODULATION)))


def measure_channel(samples: np.ndarray, rate: int = SAMPLE_RATE) -> ChannelMeasure:
    """Speech-band power, in-band share and envelope variation of one channel `samples: (N,)`."""
    assert samples.ndim == 1, samples.shape
    if samples.size == 0:
        return ChannelMeasure(band_dbfs=-120.0, speech_ratio=0.0, modulation=0.0)
    x = samples.astype(np.float64) - float(np.mean(samples))  # a DC offset is not speech
    spectrum = np.fft.rfft(x)
    power_spectrum = np.abs(spectrum) ** 2
    freqs = np.fft.rfftfreq(x.size, d=1.0 / rate)
    in_band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
    total = float(power_spectrum.sum())
    ratio = float(power_spectrum[in_band].sum()) / total if total > _EPS else 0.0
    power = float(np.mean(x * x))  # Parseval: the band's share of this is its power
    band = np.fft.irfft(np.where(in_band, spectrum, 0), n=x.size)
    return ChannelMeasure(
        band_dbfs=10 * math.log10(max(power * ratio, _EPS)),
        speech_ratio=ratio,
        modulation=_envelope_variation(band, int(rate * ENVELOPE_FRAME_S)),
    )


def _envelope_variation(band: np.ndarray, frame: int) -> float:
    """std/mean of the energy per frame: about 0.1 for steady noise, near 1 or above for speech."""
    frames = band[: band.size // frame * frame].reshape(-1, frame)
    if frames.shape[0] < 2:
        return 1.0  # too short to tell: neither favoured nor penalised
    energy = (frames ** 2).mean(axis=1)
    mean = float(energy.mean())
    return float(energy.std() / mean) if mean > _EPS else 0.0


@dataclasses.dataclass(frozen=True)
class ChannelChoice:
    channels: tuple[int, ...]  # the channels averaged into the output (one: a single channel)
    measures: tuple[ChannelMeasure, ...]  # one per source channel

    @property
    def channel(self) -> int | None:
        """The chosen channel, or None when several were mixed."""
        return self.channels[0] if len(self.channels) == 1 else None


def choose_speech_channel(channels: np.ndarray, rate: int = SAMPLE_RATE) -> ChannelChoice:
    """The channel (or the mix of equally good channels) that carries the speech, `channels: (C, N)`."""
    assert channels.ndim == 2, channels.shape
    measures = tuple(measure_channel(c, rate) for c in channels)
    best = max(m.score_db for m in measures)
    chosen = tuple(i for i, m in enumerate(measures) if m.score_db >= best - MIX_MARGIN_DB)
    return ChannelChoice(channels=chosen, measures=measures)


@dataclasses.dataclass(frozen=True)
class SpeechAudio:
    """A clip's speech as 16 kHz mono, with how it was taken from the source channels."""

    samples: np.ndarray  # (N,) float32 in [-1, 1]
    rate: int
    source_channels: int
    source_layout: str
    source_rate: int
    choice: ChannelChoice

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.rate

    @property
    def rms_dbfs(self) -> float:
        return 10 * math.log10(max(float(np.mean(self.samples.astype(np.float64) ** 2)), _EPS))

    @property
    def silent(self) -> bool:
        return max(m.band_dbfs for m in self.choice.measures) < SILENCE_DBFS


def speech_audio(path: str | os.PathLike, rate: int = SAMPLE_RATE) -> SpeechAudio:
    """Decode a clip's audio and keep the speech channel (or mix) as mono at `rate`."""
    channels, layout, source_rate = decode_channels(path, rate)
    choice = choose_speech_channel(channels, rate)
    mono = channels[list(choice.channels)].mean(axis=0).astype(np.float32)
    return SpeechAudio(mono, rate, channels.shape[0], layout, source_rate, choice)


def encode_flac(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Mono float32 samples `(N,)` as a 16-bit FLAC file."""
    import av

    assert samples.ndim == 1, samples.shape
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        container.metadata.clear()
        stream = container.add_stream("flac", rate=rate, layout="mono")
        stream.format = "s16"
        step = 16_384
        for start in range(0, max(pcm.size, 1), step):
            chunk = pcm[start:start + step]
            if chunk.size == 0:
                break
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def load_audio(uri: str) -> tuple[np.ndarray, int]:
    """A stored mono audio file (e.g. `clip_audio.audio_uri`) as (samples (N,) float32, rate)."""
    import av

    with av.open(io.BytesIO(read_media(uri))) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return (pcm.astype(np.float32) / 32768.0), rate


# -- frames ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SampledFrame:
    second: int  # the whole second this frame stands for
    time_s: float  # its presentation time from the start of the video stream
    image: np.ndarray  # (H, W, 3) uint8 RGB


def frames_per_second(path: str | os.PathLike) -> Iterator[SampledFrame]:
    """The first frame at or after each whole second (t = 0, 1, 2, ...), decoded in order.

    Decoding in order is cheaper than seeking in short clips (one keyframe each), and unlike
    FFmpeg's `fps=1` filter (t = 0.46, 1.46, ...) it starts at the first frame. A second with no
    frame of its own is skipped, never filled with a later frame.
    """
    import av

    with _open(path) as container:
        if not container.streams.video:
            raise MediaProblem(Status.NO_VIDEO, f"{Path(path).name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        last = -1
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - start
                second = math.floor(t + 1e-6)
                if second > last:
                    last = second
                    yield SampledFrame(second, t, frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise MediaProblem(Status.CORRUPT_MEDIA, f"video of {Path(path).name} fails to decode: {_ffmpeg_message(exc)}") from None


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB frame `(H, W, 3)` uint8 as JPEG bytes."""
    from PIL import Image

    assert image.ndim == 3 and image.shape[2] == 3, image.shape
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def load_image(uri: str) -> np.ndarray:
    """A stored frame (e.g. `clip_frames.frame_uri`) as `(H, W, 3)` uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(read_media(uri))) as image:
        return np.asarray(image.convert("RGB"))
