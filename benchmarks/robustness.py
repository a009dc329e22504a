"""Every awkward input of the robustness issues, fed to `prepare` in one folder and each file to
`load_audio`: what happened to each (processed / skipped with reason). Also peak memory while
preparing a 1-hour file. Prints one JSON object.

    python benchmarks/robustness.py [--hour]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def tone(seconds, sr, channels=1, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * 440 * t) * np.exp(-t / max(seconds, 1e-3))).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def make_inputs(root: Path) -> dict[str, Path]:
    cases = {}

    def add(name, fname, writer):
        p = root / fname
        writer(p)
        cases[name] = p

    add("empty file", "empty.wav", lambda p: p.write_bytes(b""))
    add("text renamed .wav", "text.wav", lambda p: p.write_text("hello, I am not audio\n" * 10))
    add("random bytes", "random.flac", lambda p: p.write_bytes(np.random.default_rng(0).bytes(10000)))
    full = root / "_full.wav"
    sf.write(full, tone(1.0, 22050), 22050)
    add("truncated header", "truncated.wav", lambda p: p.write_bytes(full.read_bytes()[:30]))
    add("truncated data", "truncated_data.wav", lambda p: p.write_bytes(full.read_bytes()[:20000]))
    add("header only (0 frames)", "header_only.wav", lambda p: sf.write(p, np.zeros(0, np.float32), 22050))
    nan = tone(1.0, 22050); nan[5000] = np.nan
    add("NaN samples", "nan.wav", lambda p: sf.write(p, nan, 22050, subtype="FLOAT"))
    inf = tone(1.0, 22050); inf[7000] = np.inf
    add("Inf samples", "inf.wav", lambda p: sf.write(p, inf, 22050, subtype="FLOAT"))
    add("silent audio", "silent.wav", lambda p: sf.write(p, np.zeros(22050, np.float32), 22050))
    add("clipped audio", "clipped.wav", lambda p: sf.write(p, np.clip(tone(2.0, 22050, amp=4.0), -1, 1), 22050))
    add("10 ms file", "ten_ms.wav", lambda p: sf.write(p, tone(0.01, 22050), 22050))
    add("shorter than one frame (1 ms)", "one_ms.wav", lambda p: sf.write(p, tone(0.001, 22050), 22050))
    for ch in (1, 2, 6, 8):
        add(f"{ch} channels", f"ch{ch}.wav", lambda p, ch=ch: sf.write(p, tone(1.0, 22050, ch), 22050))
    for sr in (8000, 192000):
        add(f"{sr} Hz", f"sr{sr}.wav", lambda p, sr=sr: sf.write(p, tone(1.0, sr), sr))
    for sub in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        add(f"{sub} samples", f"fmt_{sub}.wav", lambda p, sub=sub: sf.write(p, tone(1.0, 22050), 22050, subtype=sub))
    add("FLAC 44.1 kHz stereo", "song.flac", lambda p: sf.write(p, tone(3.0, 44100, 2), 44100, subtype="PCM_24"))
    add("OGG Vorbis", "song.ogg", lambda p: sf.write(p, tone(2.0, 44100), 44100, subtype="VORBIS"))
    add("MP3", "song.mp3", lambda p: sf.write(p, tone(2.0, 44100), 44100, subtype="MPEG_LAYER_III"))
    add("10-minute file", "ten_minutes.wav", lambda p: sf.write(p, np.tile(tone(1.0, 22050), 600), 22050))
    add("spaces and non-ASCII name", "Schöne Grüße — 春.wav", lambda p: sf.write(p, tone(1.0, 22050), 22050))
    bad_name = os.fsdecode(b"bad_\xff\xfe_name.wav")
    add("non-UTF-8 file name", bad_name, lambda p: sf.write(os.fsencode(p), tone(1.0, 22050), 22050))
    add("symlink loop", "loop.wav", lambda p: os.symlink(p, p))
    add("dangling symlink", "dangling.wav", lambda p: os.symlink(root / "nowhere.wav", p))

    def unreadable(p):
        sf.write(p, tone(1.0, 22050), 22050)
        os.chmod(p, 0)
    add("unreadable permissions", "unreadable.wav", unreadable)
    full.unlink()
    return cases


def main():
    from vae_tfp.audio.io import load_audio
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset
    from vae_tfp.errors import VaeTfpError

    ap = argparse.ArgumentParser()
    ap.add_argument("--hour", action="store_true", help="also measure peak memory preparing a 1-hour file")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="robust-"))
    src = root / "src"
    src.mkdir()
    cases = make_inputs(src)
    config = spectrogram_preset("default")
    table = {}
    for name, path in cases.items():
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                audio = load_audio(path, config.sample_rate)
            table[name] = {"load_audio": f"processed: {len(audio)} samples"
                           + (f" (warning: {caught[0].message})" if caught else "")}
        except VaeTfpError as err:
            table[name] = {"load_audio": f"error: {err}"}
        except Exception as err:  # noqa: BLE001 — this is what the benchmark looks for
            table[name] = {"load_audio": f"CRASH {type(err).__name__}: {err}"}
    lines = []
    t0 = time.perf_counter()
    m = prepare_dataset([src], root / "ds", config, progress=False, log=lines.append, workers=2)
    by_source = {}
    for c in m["clips"]:
        by_source[c["source"]] = by_source.get(c["source"], 0) + 1
    skipped = {s["path"]: s["reason"] for s in m["skipped"]}
    for name, path in cases.items():
        key = os.fspath(path)
        table[name]["prepare"] = (f"processed: {by_source[key]} clips" if key in by_source else
                                  f"skipped: {skipped[key]}" if key in skipped else "not found by prepare")
    out = {"benchmark": "robustness", "machine": machine(), "running_as_root": os.geteuid() == 0,
           "prepare_seconds": round(time.perf_counter() - t0, 1), "prepare_log_lines": len(lines), "cases": table}
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # root reads anything: try the unreadable file as an unprivileged user (nobody)
        os.chmod(root, 0o755), os.chmod(src, 0o755)
        code = ("from vae_tfp.audio.io import load_audio\ntry:\n    load_audio(%r, 22050); print('processed')\n"
                "except Exception as e:\n    print(f'{type(e).__name__}: {e}')" % os.fspath(cases["unreadable permissions"]))
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                             capture_output=True, text=True)
        table["unreadable permissions"]["load_audio_as_nobody"] = (res.stdout.strip() or res.stderr.strip()[-200:])
    bad_only = root / "bad_only"
    bad_only.mkdir()
    for n in ("a.wav", "b.flac"):
        (bad_only / n).write_bytes(b"junk")
    proc = subprocess.run([sys.executable, "-m", "vae_tfp.apps.cli", "prepare", str(bad_only), "--out", str(root / "none")],
                          capture_output=True, text=True)
    out["folder_of_only_bad_files"] = {"exit_code": proc.returncode, "stderr": proc.stderr.strip().splitlines()[-1],
                                       "dataset_written": (root / "none").exists()}
    if args.hour:
        hour = root / "hour" / "one_hour.wav"
        hour.parent.mkdir()
        with sf.SoundFile(hour, "w", 44100, 2, subtype="PCM_16") as f:
            block = tone(10.0, 44100, 2, amp=0.3)
            for _ in range(360):
                f.write(block)
        code = ("import resource, sys, time; from vae_tfp.data.dataset import prepare_dataset; "
                "from vae_tfp.config import spectrogram_preset; t=time.perf_counter(); "
                "m = prepare_dataset([sys.argv[1]], sys.argv[2], spectrogram_preset('default'), progress=False); "
                "print(len(m['clips']), time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        res = subprocess.run([sys.executable, "-c", code, str(hour.parent), str(root / "hour_ds")], capture_output=True,
                             text=True)
        clips, secs, rss_kb = res.stdout.split()
        out["one_hour_file"] = {"format": "44.1 kHz stereo 16-bit WAV, 635 MB", "clips": int(clips),
                                "seconds": round(float(secs), 1), "peak_rss_mb": round(int(rss_kb) / 1024, 1),
                                "file_mb": round(hour.stat().st_size / 2**20, 1)}
    emit("robustness", out)


if __name__ == "__main__":
    main()
