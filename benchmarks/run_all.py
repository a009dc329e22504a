"""`make bench`: runs every benchmark in turn; each prints one JSON object and writes it to
benchmarks/results/. Needs the embedded data (made on first use) and, for generation latency and
sample quality, the committed saved_models/demo."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    ["train_throughput.py", "--presets", "seed", "benchmarks/configs/default-v1.json", "benchmarks/configs/default-v2.json",
     "default", "small"],
    ["train_throughput.py", "--presets", "seed", "default", "--jit", "--name", "train_throughput_jit"],
    ["conv_layers.py", "--presets", "benchmarks/configs/default-v2.json", "default"],
    ["resolution_ceiling.py", "--data", "data/notes"],
    ["decoder_fit.py", "--preset", "default", "--codes", "random", "--name", "decoder_fit_random_codes"],
    ["receptive_field.py", "--preset", "music"],
    ["receptive_field.py", "--preset", "default", "--name", "receptive_field_default"],
    ["input_pipeline.py", "--data", "data/notes"],
    ["open_dataset.py", "--data", "data/notes"],
    ["prepare_throughput.py", "--spec", "default"],
    ["inversion.py", "--spec", "default", "--clips", "24", "--model", "saved_models/demo"],
    ["generation_latency.py", "--model", "saved_models/demo"],
    ["sample_quality.py", "--model", "saved_models/demo", "--data", "data/notes"],
    ["dataset_scale.py"],
    ["shuffle_quality.py", "--chunk-rows", "4", "16"],
    ["input_vs_training.py", "--rounds", "9", "--steps", "12"],
    ["conditional.py", "--pitch-tracker"],
    ["instrument.py"],
    ["previews_cost.py", "--previews", "1", "--epochs", "4", "--name", "previews_cost_every_epoch"],
    ["previews_cost.py", "--previews", "auto", "--epochs", "16"],
]

if __name__ == "__main__":
    failed = 0
    for args in BENCHES:
        print(f"== {' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]]).returncode != 0
    sys.exit(1 if failed else 0)
