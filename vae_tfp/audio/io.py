"""Audio in and out.

Everything that reads audio goes through :func:`stream_audio`: decode (libsndfile via soundfile:
WAV, FLAC, OGG/Vorbis, MP3, AIFF; any integer or float sample format) → mono (mean of channels)
→ resample to the config's rate (soxr, streaming) → finite-value check. It reads the file in
blocks, so memory stays bounded whatever the file's length. :func:`iter_clips` cuts that stream
into fixed-length clips (the last one padded); :func:`load_audio` returns the whole signal.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import stat
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from ..config import MAX_SAMPLE_RATE, SpectrogramConfig
from ..errors import AudioError, ConfigError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
BLOCK_FRAMES = 1 << 16  # frames decoded per read: 1.5 s at 44.1 kHz, a few MB for 8 channels
MIN_TAIL_FRACTION = 0.5  # a last partial clip shorter than this fraction of a clip is dropped


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str


@dataclasses.dataclass(frozen=True)
class Clip:
    """One fixed-length clip cut from a file.

    Attributes:
        audio: float32 [clip_samples] mono at the config's sample rate, zero-padded at the end.
        offset: Start of the clip in the source file, in seconds.
        valid_samples: How many samples of ``audio`` came from the file (the rest is padding).
    """

    audio: np.ndarray
    offset: float
    valid_samples: int


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Reads an audio file's header, raising :class:`AudioError` if it cannot be used."""
    path = os.fspath(path)
    with _open(path) as f:
        return AudioInfo(path, f.samplerate, f.channels, f.frames, f.format, f.subtype)


def _open(path: str) -> sf.SoundFile:
    try:
        mode = os.stat(path).st_mode  # the OS's own reason: missing, permission, symlink loop
        with open(path, "rb"):
            pass
    except OSError as err:
        raise AudioError(f"{path}: cannot open ({err.strerror or type(err).__name__})") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: is empty (0 bytes)")
    try:
        # bytes: soundfile encodes str paths strictly, which fails on non-UTF-8 file names
        f = sf.SoundFile(os.fsencode(path))
    except sf.LibsndfileError as err:
        raise AudioError(f"{path}: cannot decode audio ({err.error_string.rstrip('.')})") from None
    except (OSError, RuntimeError, ValueError, TypeError) as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    if f.frames <= 0:
        f.close()
        raise AudioError(f"{path}: contains no samples")
    if not 0 < f.samplerate <= MAX_SAMPLE_RATE:
        f.close()
        raise AudioError(f"{path}: sample rate {f.samplerate} Hz is not supported")
    return f


def stream_audio(
    path: str | os.PathLike, sample_rate: int, *, block_frames: int = BLOCK_FRAMES
) -> Iterator[np.ndarray]:
    """Yields a file's audio as consecutive float32 mono blocks at ``sample_rate``.

    Args:
        path: An audio file in any format libsndfile decodes.
        sample_rate: Output rate in Hz; soxr (high quality) resamples if the file differs.
        block_frames: Frames decoded per read (bounds memory).

    Yields:
        float32 [n] blocks; concatenated they are the whole resampled signal.

    Raises:
        AudioError: the file is missing, unreadable, undecodable, empty or has NaN/Inf samples.
    """
    path = os.fspath(path)
    with _open(path) as f:
        in_rate, channels = f.samplerate, f.channels
        resampler = None if in_rate == sample_rate else soxr.ResampleStream(
            in_rate, sample_rate, 1, dtype="float32", quality="HQ")
        position = 0
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (RuntimeError, sf.LibsndfileError) as err:
                raise AudioError(f"{path}: cannot decode audio after {position / in_rate:.2f} s ({err})") from None
            last = len(block) < block_frames
            mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
            if not np.all(np.isfinite(mono)):
                bad = position + int(np.argmin(np.isfinite(mono)))
                raise AudioError(f"{path}: contains NaN or Inf samples (first at {bad / in_rate:.3f} s)")
            position += len(block)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                break
        if position == 0:
            raise AudioError(f"{path}: contains no samples")


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Loads a whole file as float32 [n] mono at ``sample_rate`` (see :func:`stream_audio`)."""
    blocks = list(stream_audio(path, sample_rate))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    _warn_if_suspicious(audio, os.fspath(path))
    return audio


def iter_clips(
    path: str | os.PathLike,
    config: SpectrogramConfig,
    *,
    clip_hop: float | None = None,
) -> Iterator[Clip]:
    """Cuts a file into clips of ``config.clip_samples`` samples, streaming.

    Clips start every ``clip_hop`` seconds (default: one clip length, no overlap). A file
    shorter than one clip gives one zero-padded clip; a trailing partial clip is kept, padded,
    if it holds at least half a clip of audio.

    Args:
        path: An audio file (any format, rate, channel count, sample format, length).
        config: Fixes the sample rate and clip length.
        clip_hop: Seconds between clip starts; must be positive.

    Yields:
        :class:`Clip` objects in time order.

    Raises:
        AudioError: as :func:`stream_audio`.
        ConfigError: ``clip_hop`` is not positive.
    """
    size = config.clip_samples
    hop = size if clip_hop is None else int(round(clip_hop * config.sample_rate))
    if hop <= 0:
        raise ConfigError(f"clip_hop={clip_hop!r} must be a positive number of seconds")
    buffer = np.zeros(0, np.float32)
    start = 0  # sample index (in the output rate) of buffer[0]
    skip = 0  # samples still to drop from the stream (hop longer than a clip)
    emitted = 0
    for block in stream_audio(path, config.sample_rate):
        if skip:
            n = min(skip, len(block))
            block, skip, start = block[n:], skip - n, start + n
        buffer = np.concatenate([buffer, block])
        while len(buffer) >= size:
            yield Clip(buffer[:size].copy(), start / config.sample_rate, size)
            emitted += 1
            if hop <= len(buffer):
                buffer, start = buffer[hop:], start + hop
            else:
                skip, start, buffer = hop - len(buffer), start + len(buffer), buffer[:0]
    if len(buffer) and (emitted == 0 or len(buffer) >= MIN_TAIL_FRACTION * size):
        clip = np.zeros(size, np.float32)
        clip[: len(buffer)] = buffer
        yield Clip(clip, start / config.sample_rate, len(buffer))


def first_clips(path: str | os.PathLike, config: SpectrogramConfig, max_clips: int | None = None) -> list[Clip]:
    """A file's first ``max_clips`` consecutive clips (all with None), decoding no further."""
    return list(itertools.islice(iter_clips(path, config), max_clips))


def _warn_if_suspicious(audio: np.ndarray, where: str) -> None:
    if not len(audio):
        return
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        warnings.warn(f"{where}: audio is silent", stacklevel=3)
    elif peak >= 1.0:
        warnings.warn(f"{where}: audio reaches full scale (peak {peak:.3f}); it may be clipped", stacklevel=3)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Writes float audio in [-1, 1] as 16-bit PCM WAV (playable in every browser).

    Audio whose peak exceeds 0.99 (Griffin-Lim output can) is scaled down to peak 0.99 rather
    than clipped. Parent folders are created.

    Args:
        path: Output ``.wav`` path.
        audio: float [n] mono.
        sample_rate: In Hz.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, limit_peak(audio), int(sample_rate), subtype="PCM_16")
    return path


def limit_peak(audio: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """float32 [n] mono with non-finite values zeroed, scaled down (never clipped) to at most ``peak``."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio * np.float32(peak / top) if top > peak else audio


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Audio files under ``root`` (recursive, sorted, not following directory symlinks)."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(AUDIO_EXTENSIONS):
                found.append(Path(folder) / name)
    return found
