"""SIGKILL a training run at random moments, five times in a row, resuming each time; then let it
finish. Reports the epochs completed at each kill and whether the final history is 1..N without
a gap and the model loads.

    python benchmarks/kill_resume.py --kills 5 --epochs 80
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset
    from vae_tfp.data.demo_data import render_demo_data
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    render_demo_data(root / "audio", sample_rate=8000, instruments={"piano": 0, "flute": 73}, pitches=(48, 60, 72),
                     velocities=(100,), n_chorales=0, progress=False)
    prepare_dataset([root / "audio" / "notes"], root / "ds", spectrogram_preset("tiny"), progress=False)
    model = root / "model"
    cmd = [sys.executable, "-m", "vae_tfp.apps.cli", "train", str(root / "ds"), "--model", str(model), "--preset", "tiny",
           "--epochs", str(args.epochs), "--batch-size", "2", "--quiet", "--resume"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    history_file = model / "checkpoints" / "history.json"
    kills = []
    for k in range(args.kills):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(10.0, 30.0)  # start-up takes 5-10 s, an epoch ~1-2 s: kills land anywhere
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(json.loads(history_file.read_text())) if history_file.exists() else 0
        kills.append({"after_s": round(delay, 2), "epochs_in_history": done})
    final = subprocess.run(cmd, env=env, capture_output=True, text=True)
    history = json.loads((model / "history.json").read_text())
    epochs = [h["epoch"] for h in history]
    emit("kill_resume", {
        "benchmark": "kill_resume", "machine": machine(), "kills": kills, "final_exit_code": final.returncode,
        "requested_epochs": args.epochs, "final_epochs": epochs,
        "no_gap_and_complete": epochs == list(range(1, args.epochs + 1)),
        "model_loads": load_model(model).decoder is not None,
        "leftover_temp_folders": sorted(p.name for p in root.iterdir() if p.name.startswith(".")),
    })


if __name__ == "__main__":
    main()
