"""Stage 2's choices on the toy texture set, where they are cheap to measure: clips of band-limited
noise (:func:`vae_tfp.data.demo_data.render_band_noise`) whose speckle along time a ``tiny``
model's pixel likelihood blurs away. One stage-1 model, then each variant of the adversarial stage
from it; per variant the reconstructions' roughness (mean absolute frame-to-frame change, the
texture) against the real clips' and stage 1's, the reconstruction MSE, the prior samples'
roughness, and the wall time. Prints one JSON object.

    python benchmarks/adversarial_toy.py [--epochs 25] [--variants default lsgan ...]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

VARIANTS = {  # name: AdversarialConfig changes (all at the toy's decoder rate, 1e-3)
    "default": {},
    "lsgan": {"loss": "lsgan"},
    "1 scale": {"scales": 1},
    "2 scales": {"scales": 2},
    "no feature matching": {"feature_weight": 0.0},
    "feature matching only": {"adversarial_weight": 0.0},
    "adversarial weight 0.1": {"adversarial_weight": 0.1},
    "frequency position": {"frequency_position": True},
    "decoder rate 1e-4": {"learning_rate": 1e-4},
    "anchor only (control)": {"adversarial_weight": 0.0, "feature_weight": 0.0},
}


def roughness(images) -> float:
    import numpy as np

    return float(np.abs(np.diff(np.asarray(images)[..., 0], axis=2)).mean())


def main():
    import numpy as np

    from vae_tfp.apps.generate import decode, encode
    from vae_tfp.config import AdversarialConfig, model_preset, spectrogram_preset
    from vae_tfp.data.dataset import open_dataset, prepare_dataset
    from vae_tfp.data.demo_data import render_band_noise
    from vae_tfp.model.adversarial import train_adversarial
    from vae_tfp.model.prior import sample_prior
    from vae_tfp.model.saving import load_model
    from vae_tfp.model.training import train

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--stage1-epochs", type=int, default=15)
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    quiet = {"verbose": 0, "log": lambda _: None, "tensorboard": False}
    tmp = Path(tempfile.mkdtemp(prefix="adv_toy_"))
    try:
        data = tmp / "ds"
        prepare_dataset([render_band_noise(tmp / "src")], data, spectrogram_preset("tiny"), progress=False,
                        log=lambda _: None)
        x = open_dataset(data).load("train")
        base = tmp / "stage1"
        train(data, base, model_preset("tiny"), epochs=args.stage1_epochs, batch_size=8, **quiet)

        def measure(folder, stage):
            model = load_model(folder, stage=stage)
            recon = decode(model, encode(model, x)[0])
            samples = decode(model, sample_prior(model, len(x), seed=0))
            return {"recon_roughness": round(roughness(recon), 4), "sample_roughness": round(roughness(samples), 4),
                    "recon_mse": round(float(np.mean((recon - x) ** 2)), 5)}

        rows = [{"variant": "stage 1", **measure(base, None)}]
        for name in args.variants:
            changes = VARIANTS[name]
            folder = tmp / name.replace(" ", "_")
            shutil.copytree(base, folder)
            t0 = time.perf_counter()
            train_adversarial(data, folder, epochs=args.epochs, batch_size=8,
                              config=AdversarialConfig(learning_rate=1e-3).replace(**changes), **quiet)
            rows.append({"variant": name, "changes": changes, "seconds": round(time.perf_counter() - t0, 1),
                         **measure(folder, 2)})
            print(rows[-1], file=sys.stderr, flush=True)
        emit("adversarial_toy", {"benchmark": "adversarial_toy", "machine": machine(), "epochs": args.epochs,
                                 "stage1_epochs": args.stage1_epochs, "real_roughness": round(roughness(x), 4),
                                 "n_clips": len(x), "rows": rows})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
