"""The embedded real dataset: rendered, never downloaded.

Two sets of WAV files, rendered with tinysoundfont from the General-MIDI soundfont that ships
inside the pretty_midi wheel (``TimGM6mb.sf2``, 6 MB, sampled real instruments):

* ``notes/<instrument>/<instrument>_<pitch>_v<velocity>.wav`` — single notes of several GM
  programs over a range of pitches (held 3 s, 4 s files), labelled by instrument (the
  sub-folder); ``notes/metadata.json`` adds program, pitch and velocity per file.
* ``chorales/<bwv>.wav`` — Bach chorales from the music21 corpus, four voices on a string
  ensemble at the score's tempo, labelled by piece (the file name); ``chorales/metadata.json``
  adds the title.

Rendering is deterministic (byte-identical files on re-run) and takes seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio.io import write_wav
from ..config import DEFAULT_SAMPLE_RATE
from ..errors import VaeTfpError
from ..files import write_json_atomic

# GM program numbers (0-based) of clearly different timbres.
DEFAULT_INSTRUMENTS: dict[str, int] = {
    "piano": 0, "vibraphone": 11, "organ": 19, "guitar": 24,
    "violin": 40, "trumpet": 56, "clarinet": 71, "flute": 73,
}
DEFAULT_PITCHES = tuple(range(48, 85, 2))  # C3 .. C6 in whole tones: 19 pitches
DEFAULT_VELOCITIES = (80, 120)
NOTE_HOLD_SECONDS = 3.0
NOTE_FILE_SECONDS = 4.0
CHORALE_PROGRAM = 48  # String Ensemble 1
DEFAULT_CHORALES = 24
NOTE_GAIN_DB = 6.0  # synth gain: single notes peak between -17 and -1 dBFS
CHORALE_GAIN_DB = 3.0  # four voices together


def soundfont_path() -> Path:
    """The General-MIDI soundfont shipped inside the pretty_midi package."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise VaeTfpError(f"{path}: soundfont missing from the pretty_midi package (reinstall pretty_midi)")
    return path


def _synth(sample_rate: int, gain_db: float):
    try:
        import tinysoundfont
    except ImportError:
        raise VaeTfpError("tinysoundfont is not installed (pip install --no-deps tinysoundfont)") from None
    synth = tinysoundfont.Synth(gain=gain_db, samplerate=sample_rate)
    return synth, synth.sfload(os.fspath(soundfont_path()))


def _generate(synth, n: int) -> np.ndarray:
    """n stereo frames from the synth → float32 [n] mono."""
    if n <= 0:
        return np.zeros(0, np.float32)
    stereo = np.frombuffer(synth.generate(n), dtype=np.float32).reshape(-1, 2)
    return stereo.mean(axis=1, dtype=np.float32)


def render_note(program: int, pitch: int, velocity: int, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
                hold: float = NOTE_HOLD_SECONDS, length: float = NOTE_FILE_SECONDS) -> np.ndarray:
    """One note of a GM program → float32 [length * sample_rate] mono audio."""
    synth, sfid = _synth(sample_rate, NOTE_GAIN_DB)
    synth.program_select(0, sfid, 0, program)
    synth.noteon(0, pitch, velocity)
    held = _generate(synth, int(round(hold * sample_rate)))
    synth.noteoff(0, pitch)
    tail = _generate(synth, int(round(length * sample_rate)) - len(held))
    return np.concatenate([held, tail])


def chorale_events(score) -> list[tuple[float, float, int, int]]:
    """A music21 score → ``(start_s, end_s, channel, midi_pitch)`` per note, at the score's tempo."""
    marks = list(score.flatten().getElementsByClass("MetronomeMark"))
    qpm = float(marks[0].getQuarterBPM()) if marks and marks[0].getQuarterBPM() else 80.0
    seconds_per_quarter = 60.0 / qpm
    events = []
    for channel, part in enumerate(score.parts[:15]):
        for note in part.flatten().notes:
            start = float(note.offset) * seconds_per_quarter
            end = start + float(note.duration.quarterLength) * seconds_per_quarter
            for p in note.pitches:
                events.append((start, end, channel, int(p.midi)))
    return sorted(events)


def render_events(events, *, program: int, sample_rate: int = DEFAULT_SAMPLE_RATE, tail: float = 1.0,
                  velocity: int = 90) -> np.ndarray:
    """Note events → float32 mono audio, every channel playing ``program``."""
    synth, sfid = _synth(sample_rate, CHORALE_GAIN_DB)
    for channel in {e[2] for e in events}:
        synth.program_select(channel, sfid, 0, program)
    changes = sorted([(s, 1, c, p) for s, _, c, p in events] + [(e, 0, c, p) for _, e, c, p in events])
    pieces, now = [], 0
    for time, is_on, channel, pitch in changes:  # note-offs sort before note-ons at equal times
        at = int(round(time * sample_rate))
        pieces.append(_generate(synth, at - now))
        now = max(now, at)
        if is_on:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    pieces.append(_generate(synth, int(tail * sample_rate)))
    return np.concatenate(pieces)


def chorale_paths(n: int) -> list[Path]:
    """The first ``n`` Bach chorales (``bwv*.mxl``) of the music21 corpus, in name order."""
    from music21 import corpus

    paths = sorted((Path(p) for p in corpus.getComposer("bach")
                    if Path(p).name.startswith("bwv") and Path(p).suffix == ".mxl"),
                   key=lambda p: p.name)
    return paths[:n]


def render_band_noise(folder: str | os.PathLike, *, n: int = 24, sample_rate: int = 8000, seconds: float = 1.5,
                      seed: int = 0) -> Path:
    """Clips of band-limited noise (a random band between 200 Hz and 3.9 kHz each) under
    ``folder/low`` and ``folder/high``: a fine speckle texture along time that no small code can
    hold, so a decoder trained on a pixel likelihood blurs it (the adversarial stage's toy set).

    Returns:
        ``folder``.
    """
    import scipy.signal

    folder, rng = Path(folder), np.random.default_rng(seed)
    for i in range(n):
        lo = rng.uniform(200, 2500)
        b, a = scipy.signal.butter(4, [lo, min(lo * rng.uniform(1.3, 2.0), 3900)], btype="band", fs=sample_rate)
        noise = 0.3 * scipy.signal.lfilter(b, a, rng.standard_normal(int(seconds * sample_rate)))
        write_wav(folder / ("low" if lo < 1200 else "high") / f"n{i}.wav", noise.astype(np.float32), sample_rate)
    return folder


def render_demo_data(
    out: str | os.PathLike,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    instruments: dict[str, int] | None = None,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    velocities: Sequence[int] = DEFAULT_VELOCITIES,
    n_chorales: int = DEFAULT_CHORALES,
    progress: bool = True,
) -> dict[str, Path]:
    """Renders the embedded dataset's audio into ``out/notes`` and ``out/chorales``.

    Args:
        out: Output folder.
        sample_rate: Rendering rate in Hz.
        instruments: Label → GM program (0-based); default :data:`DEFAULT_INSTRUMENTS`.
        pitches: MIDI pitches of the notes set.
        velocities: MIDI velocities of the notes set.
        n_chorales: Chorales to render (0 for none).
        progress: Show tqdm progress bars.

    Returns:
        ``{"notes": folder, "chorales": folder}`` (only the sets rendered).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    instruments = DEFAULT_INSTRUMENTS if instruments is None else instruments
    written: dict[str, Path] = {}
    if instruments and pitches:
        notes = out / "notes"
        meta = {}
        jobs = [(n, p, v) for n in instruments for p in pitches for v in velocities]
        for name, pitch, velocity in tqdm(jobs, desc="notes", disable=not progress):
            rel = f"{name}/{name}_{pitch:03d}_v{velocity:03d}.wav"
            write_wav(notes / rel, render_note(instruments[name], pitch, velocity, sample_rate=sample_rate),
                      sample_rate)
            meta[rel] = {"instrument": name, "program": instruments[name], "pitch": pitch, "velocity": velocity}
        write_json_atomic(notes / "metadata.json", meta, sort_keys=True)
        written["notes"] = notes
    if n_chorales > 0:
        from music21 import corpus

        chorales = out / "chorales"
        meta = {}
        for path in tqdm(chorale_paths(n_chorales), desc="chorales", disable=not progress):
            score = corpus.parse(os.fspath(path))
            piece = path.stem
            audio = render_events(chorale_events(score), program=CHORALE_PROGRAM, sample_rate=sample_rate)
            write_wav(chorales / f"{piece}.wav", audio, sample_rate)
            title = score.metadata.title if score.metadata is not None else None
            meta[f"{piece}.wav"] = {"piece": piece, "title": title}
        write_json_atomic(chorales / "metadata.json", meta, sort_keys=True)
        written["chorales"] = chorales
    return written
