"""The ``vae-tfp`` command line: each sub-command is a few lines over the library.

Errors of the :class:`~vae_tfp.errors.VaeTfpError` family are printed as one line without a
traceback (``--debug`` shows it); the exit status is non-zero only when nothing usable was
produced.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from ..errors import VaeTfpError
from ..audio.phase import DEFAULT_PHASE_INIT, PHASE_INITS
from ..audio.spectrogram import DEFAULT_GRIFFIN_LIM_ITERS, MAX_GRIFFIN_LIM_ITERS


def _number(kind, *, low=None, high=None, low_open=False):
    """An argparse ``type``: a finite ``kind`` (int or float) in [low, high] (``low_open``: > low),
    so a bad value is refused at parse time with the range in the message."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be finite")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            bounds = (f"{'>' if low_open else '>='} {low}" if low is not None else "") + \
                     (f"{' and ' if low is not None else ''}<= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} must be {bounds}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _previews(text: str):
    """``--previews``: 'auto', a positive number of epochs, or 0."""
    from ..model.previews import check_every

    try:
        return check_every(text) or 0
    except VaeTfpError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


MAX_GENERATE = 1_000_000  # samples one `generate` writes (a sample's files take ~0.5-1 MB at 512 x 512)
COUNT = _number(int, low=1)
NON_NEGATIVE_INT = _number(int, low=0)
POSITIVE = _number(float, low=0, low_open=True)
NON_NEGATIVE = _number(float, low=0)
FINITE = _number(float)


def _finite_json(value):
    """``value`` with NaN and Inf as null, so what is printed is always valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _spec_config(args):
    from ..config import spectrogram_preset

    return spectrogram_preset(args.spec)


def cmd_demo_data(args) -> int:
    from ..data.demo_data import render_demo_data

    t0 = time.perf_counter()
    written = render_demo_data(args.out, sample_rate=args.sample_rate, n_chorales=args.chorales,
                               progress=not args.quiet)
    for name, folder in written.items():
        print(f"{name}: {folder}")
    print(f"rendered in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_prepare(args) -> int:
    from ..data.dataset import prepare_dataset

    t0 = time.perf_counter()
    manifest = prepare_dataset(args.sources, args.out, _spec_config(args), clip_hop=args.clip_hop, seed=args.seed,
                               workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    counts = {s: v["n_clips"] for s, v in manifest["splits"].items()}
    print(f"dataset: {args.out} ({counts}, {len(manifest['labels'])} labels, "
          f"{len(manifest['skipped'])} files skipped) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_roundtrip(args) -> int:
    from ..audio.metrics import roundtrip_files

    summary = roundtrip_files(args.files, args.out, _spec_config(args), inversion=_inversion(args), max_clips=args.max_clips)
    print(f"metrics: {summary['metrics_path']}")
    print(json.dumps(summary["summary"], indent=1))
    return 0 if summary["files"] else 1


def cmd_train(args) -> int:
    from ..config import model_preset
    from ..model.devices import make_strategy
    from ..model.saving import read_model_info
    from ..model.training import train

    # the architecture: the preset asked for, else the --init-from model's, else the default preset
    config = model_preset(args.preset) if args.preset or not args.init_from else \
        read_model_info(args.init_from).model_config
    changes = {k: v for k, v in (("beta", args.beta), ("kl_warmup_steps", args.warmup),
                                 ("free_bits", args.free_bits),
                                 ("likelihood", args.likelihood),
                                 ("learning_rate", args.lr)) if v is not None}
    config = config.replace(**changes) if changes else config
    strategy = make_strategy(args.strategy)  # first: a multi-worker strategy must precede other TensorFlow work
    t0 = time.perf_counter()
    history = train(args.data, args.model, config, epochs=args.epochs, batch_size=args.batch_size, resume=args.resume,
                    strategy=strategy,
                    seed=args.seed, early_stopping_patience=args.early_stopping, steps_per_epoch=args.steps_per_epoch,
                    jit_compile=args.jit, mixed_precision=args.mixed_precision, fit_prior=args.fit_prior,
                    deterministic=args.deterministic, clip_norm=args.clip_norm, previews=args.previews,
                    lr_schedule=args.lr_schedule, init_from=args.init_from, verbose=2 if args.quiet else "auto")
    print(f"model: {args.model} ({len(history)} epochs, {time.perf_counter() - t0:.0f} s this run)")
    if args.adversarial_epochs:
        return cmd_sharpen(args, epochs=args.adversarial_epochs, resume=True, strategy=strategy)
    return 0


def _adversarial_config(args):
    from ..config import AdversarialConfig

    changes = {f.name: getattr(args, f"adv_{f.name}") for f in dataclasses.fields(AdversarialConfig)
               if getattr(args, f"adv_{f.name}", None) is not None}
    return AdversarialConfig(**changes)


def cmd_sharpen(args, *, epochs: int | None = None, resume: bool | None = None, strategy=None) -> int:
    from ..model.adversarial import train_adversarial
    from ..model.devices import make_strategy

    strategy = strategy or make_strategy(args.strategy)
    t0 = time.perf_counter()
    history = train_adversarial(args.data, args.model, epochs=epochs or args.epochs, config=_adversarial_config(args),
                                batch_size=args.batch_size, resume=args.resume if resume is None else resume,
                                strategy=strategy,
                                seed=args.seed, steps_per_epoch=args.steps_per_epoch, jit_compile=args.jit,
                                mixed_precision=args.mixed_precision, deterministic=args.deterministic,
                                verbose=2 if args.quiet else "auto")
    print(f"model: {args.model} ({len(history)} adversarial epochs, {time.perf_counter() - t0:.0f} s this run)")
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluation.diagnostics import evaluate_saved

    t0 = time.perf_counter()
    result = evaluate_saved(args.model, args.data, args.split, samples=args.samples,
                            temperatures=tuple(args.temperatures), judges=args.judges,
                            log=lambda m: print(m, file=sys.stderr), refine_steps=args.refine_steps)
    if not args.per_dim:
        result.pop("kl_per_dim")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(_finite_json(result), indent=None if args.json else 1, allow_nan=False))
    if "samples" in result and not args.json:
        from ..evaluation.sample_metrics import format_table

        print(format_table(result["samples"]))
    return 0


def cmd_fit_prior(args) -> int:
    from ..model.prior_fit import fit_prior_saved

    record = fit_prior_saved(args.model, args.data, split=args.split, num_modes=args.modes,
                             samples_per_clip=args.samples_per_clip, seed=args.seed)
    print(f"prior of {args.model}: {record['num_modes']} components fitted to {record['n_codes']} codes of "
          f"{record['n_clips']} clips in {record['seconds']} s; the codes' NLL under the prior "
          f"{record['codes_nll_before']:.1f} -> {record['codes_nll_after']:.1f} nats")
    return 0


def cmd_fit_conditional(args) -> int:
    from ..model.conditional import fit_conditional

    record = fit_conditional(args.model, args.data, split=args.split, seed=args.seed)
    print(f"{record['file']}: conditioned on {record['n_clips']} clips; fields "
          + "; ".join(f"{f} ({len(v)} values)" for f, v in record["fields"].items()))
    return 0


def _inversion(args):
    from ..audio.spectrogram import Inversion

    return Inversion(n_iter=args.iters, phase_init=args.phase_init)


def _print_result(result: dict) -> int:
    for item in result.get("items", []):
        for key in ("wav", "png"):
            if key in item:
                print(os.path.join(result["out"], item[key]))
    print(f"results: {result.get('results_path', result.get('path', result.get('png')))}")
    return 0


def cmd_generate(args) -> int:
    from .operations import op_generate

    from ..model.conditional import parse_where

    return _print_result(op_generate(args.model, args.out, n=args.n, seed=args.seed, component=args.component,
                                     temperature=args.temperature, inversion=_inversion(args),
                                     where=parse_where(args.where), method=args.method))


def _key_range(text: str) -> list[int]:
    """``48-72`` → [48, ..., 72]; ``60`` → [60]."""
    low, _, high = text.partition("-")
    try:
        keys = list(range(int(low), int(high or low) + 1))
    except ValueError:
        keys = []
    if not keys or keys[0] < 0 or keys[-1] > 127:
        raise argparse.ArgumentTypeError(f"{text!r} must be a MIDI key or a range of them, e.g. 48-72 (0-127)")
    return keys


def cmd_instrument(args) -> int:
    from ..model.conditional import parse_where
    from .operations import op_instrument

    return _print_result(op_instrument(args.model, args.out, where=parse_where(args.where), pitches=args.pitches,
                                       method=args.method, seed=args.seed, inversion=_inversion(args)))


def cmd_reconstruct(args) -> int:
    from .operations import op_reconstruct

    return _print_result(op_reconstruct(args.model, args.files, args.out, max_clips=args.max_clips, inversion=_inversion(args),
                                        refine_steps=args.refine_steps))


def cmd_encode(args) -> int:
    from .operations import op_encode

    result = op_encode(args.model, args.sources, args.out, split=args.split, refine_steps=args.refine_steps)
    print(f"latents: {result['path']} ({result['n']} clips x {result['latent_dim']} dims)")
    return 0


def cmd_interpolate(args) -> int:
    from .operations import op_interpolate

    result = op_interpolate(args.model, args.a, args.b, args.out, steps=args.steps, spherical=args.spherical,
                            inversion=_inversion(args))
    print(f"distance to A grows on {result['monotone_fraction']:.0%} of the steps")
    return _print_result(result)


def cmd_arithmetic(args) -> int:
    from .operations import op_arithmetic

    return _print_result(op_arithmetic(args.model, args.clips, args.out, weights=args.weights, data=args.data,
                                       add=args.add, subtract=args.subtract, amount=args.amount, inversion=_inversion(args)))


def cmd_project(args) -> int:
    from .operations import op_project

    result = op_project(args.model, args.data, args.out, method=args.method, split=args.split)
    print(f"map: {result['png']}\npoints: {result['csv']}")
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    pair = tuple(args.interpolate) if args.interpolate else None
    index = write_report(args.model, args.out, files=args.files, interpolate=pair, n_samples=args.n, seed=args.seed)
    print(f"report: {index}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(args.out, data_dir=args.data, spec=args.spec, preset=args.preset, epochs=args.epochs,
                      workers=args.workers)
    print(json.dumps(_finite_json(result), indent=1, allow_nan=False))
    print(f"report: {result['report']}")
    return 0


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Option groups shared by several sub-commands (argparse ``parents=``), each defined once."""
    from ..config import ADVERSARIAL_LOSSES, SPECTROGRAM_PRESETS, STRATEGIES, AdversarialConfig

    def group() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    out, quiet, seed, workers, inversion = group(), group(), group(), group(), group()
    out.add_argument("--out", required=True, type=Path, help="output folder")
    quiet.add_argument("--quiet", action="store_true", help="no progress bars")
    seed.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    workers.add_argument("--workers", type=COUNT, default=os.cpu_count() or 1, help="processes preparing audio")
    inversion.add_argument("--iters", type=_number(int, low=0, high=MAX_GRIFFIN_LIM_ITERS), default=DEFAULT_GRIFFIN_LIM_ITERS,
                           help=f"Griffin-Lim iterations (default: {DEFAULT_GRIFFIN_LIM_ITERS})")
    inversion.add_argument("--phase-init", default=DEFAULT_PHASE_INIT, choices=PHASE_INITS,
                           help=f"Griffin-Lim's starting phase: pghi = phase-gradient heap integration, estimated "
                                f"from the magnitudes (default: {DEFAULT_PHASE_INIT})")
    refine = group()
    refine.add_argument("--refine-steps", type=NON_NEGATIVE_INT, default=0,
                        help="refine each clip's code by N optimiser steps on its own posterior, -log p(x|z) - "
                             "log p(z), from the encoder's guess: closer reconstructions of audio unlike the "
                             "training data, ~1 s per clip per 30 steps on a CPU (default: 0, the encoder alone)")
    run = group()  # training runs: stage 1 (train) and the adversarial stage (sharpen)
    run.add_argument("--batch-size", type=COUNT, default=8)
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    run.add_argument("--steps-per-epoch", type=COUNT, default=None)
    run.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    run.add_argument("--mixed-precision", default=None, choices=("mixed_float16", "mixed_bfloat16"),
                     help="half-precision convolutions (GPU); distributions and loss stay float32")
    run.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                     help="bitwise reproducible training (TensorFlow op determinism). Default: on without a GPU, "
                          "off with one, where deterministic cuDNN algorithms cost speed and the decoder switches "
                          "to a slower upsampling whose gradient has a deterministic GPU kernel. Never with --jit")
    run.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    run.add_argument("--strategy", default="one", choices=STRATEGIES,
                     help="one device (default); mirrored: every GPU of this machine; multiworker: several machines, "
                          "every one running the same command with its own TF_CONFIG (README, 'Several machines')")
    adversarial = group()
    for field in dataclasses.fields(AdversarialConfig):
        if field.type in (bool, "bool"):
            adversarial.add_argument(f"--adv-{field.name.replace('_', '-')}", dest=f"adv_{field.name}", default=None,
                                     action=argparse.BooleanOptionalAction,
                                     help=f"adversarial stage: {field.name} (default: {field.default})")
            continue
        kind = {"loss": str, "scales": COUNT, "filters": COUNT, "layers": COUNT}.get(field.name, NON_NEGATIVE)
        adversarial.add_argument(f"--adv-{field.name.replace('_', '-')}", dest=f"adv_{field.name}", default=None,
                                 type=kind, choices=ADVERSARIAL_LOSSES if field.name == "loss" else None,
                                 help=f"adversarial stage: {field.name} (default: "
                                      f"{'1 / std of the training images' if field.default is None else field.default})")
    spec = {}
    for default in ("default", "small"):
        spec[default] = group()
        spec[default].add_argument("--spec", default=default, choices=sorted(SPECTROGRAM_PRESETS),
                                   help=f"spectrogram preset (default: {default})")
    return {"out": out, "quiet": quiet, "seed": seed, "workers": workers, "inversion": inversion, "refine": refine,
            "spec": spec["default"], "spec_small": spec["small"], "run": run, "adversarial": adversarial}


def build_parser() -> argparse.ArgumentParser:
    from ..config import CONDITIONAL_METHODS, DEFAULT_SAMPLE_RATE, LIKELIHOODS, LR_SCHEDULES, MODEL_PRESETS
    from ..data.dataset import SPLITS

    parser = argparse.ArgumentParser(prog="vae-tfp", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    g = _parents()
    presets = sorted(MODEL_PRESETS)

    p = sub.add_parser("demo-data", help="render the embedded dataset (soundfont notes and Bach chorales)",
                       parents=[g["out"], g["quiet"]])
    p.add_argument("--sample-rate", type=_number(int, low=1000, high=384_000), default=DEFAULT_SAMPLE_RATE)
    p.add_argument("--chorales", type=NON_NEGATIVE_INT, default=24, help="number of chorales (0 for none)")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("prepare", help="audio files/folders → spectrogram dataset",
                       parents=[g["out"], g["spec"], g["workers"], g["quiet"]])
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("--clip-hop", type=POSITIVE, default=None, help="seconds between clip starts (default: clip length)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="split seed")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is a prepared dataset (never anything else: not a file, not a folder without a dataset manifest, never a source folder or one that holds it)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("roundtrip", help="audio → spectrogram → audio: the representation's ceiling",
                       parents=[g["out"], g["spec"], g["inversion"]])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--max-clips", type=COUNT, default=4, help="clips per file")
    p.set_defaults(func=cmd_roundtrip)

    p = sub.add_parser("train", help="train a VAE on a prepared dataset",
                       parents=[g["seed"], g["run"], g["adversarial"]])
    p.add_argument("data", type=Path)
    p.add_argument("--model", required=True, type=Path, help="output folder, e.g. saved_models/NAME")
    p.add_argument("--preset", default=None, choices=presets,
                   help="model preset (default: the --init-from model's architecture, else default)")
    p.add_argument("--epochs", type=COUNT, required=True)
    p.add_argument("--init-from", type=Path, default=None, metavar="MODEL",
                   help="start from a trained model folder's weights (same architecture; no KL warm-up): "
                        "fine-tune it on DATA, or settle a finished run with --lr-schedule cosine")
    p.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                   help="constant (default), or cosine: from --lr down to 0 at the last epoch")
    p.add_argument("--adversarial-epochs", type=NON_NEGATIVE_INT, default=0,
                   help="then this many epochs of the adversarial stage (as `vae-tfp sharpen`)")
    p.add_argument("--beta", type=NON_NEGATIVE, default=None)
    p.add_argument("--warmup", type=NON_NEGATIVE_INT, default=None, help="KL warm-up steps")
    p.add_argument("--free-bits", type=NON_NEGATIVE, default=None,
                   help="nats per latent dimension not charged to the encoder (Kingma et al. 2016)")
    p.add_argument("--fit-prior", action="store_true",
                   help="at the end, refit the prior to the training codes (as `vae-tfp fit-prior`)")
    p.add_argument("--likelihood", default=None, choices=LIKELIHOODS)
    p.add_argument("--lr", type=POSITIVE, default=None)
    p.add_argument("--clip-norm", type=POSITIVE, default=None,
                   help="clip the gradients to this global norm (off by default)")
    p.add_argument("--early-stopping", type=COUNT, default=None, help="patience in epochs")
    p.add_argument("--previews", type=_previews, default="auto",
                   help="every how many epochs to decode and invert fixed prior draws and reconstructions into "
                        "MODEL/previews and TensorBoard: 'auto' (default: as often as keeps them within 10%% of "
                        "the training time; every epoch where they are cheap), N, or 0 for never")
    p.set_defaults(func=cmd_train, batch_size=16)

    p = sub.add_parser("sharpen", help="the adversarial stage: fine-tune a trained model's decoder against a "
                                       "discriminator, encoder and prior frozen", parents=[g["seed"], g["run"], g["adversarial"]])
    p.add_argument("model", type=Path, help="a trained model folder (changed in place; its stage-1 decoder is kept)")
    p.add_argument("data", type=Path, help="prepared dataset (the one the model was trained on)")
    p.add_argument("--epochs", type=COUNT, required=True, help="total epochs of the adversarial stage")
    p.set_defaults(func=cmd_sharpen)

    p = sub.add_parser("evaluate", help="held-out metrics of a saved model as JSON", parents=[g["refine"]])
    p.add_argument("model", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.add_argument("--per-dim", action="store_true", help="include KL per latent dimension")
    p.add_argument("--samples", type=NON_NEGATIVE_INT, default=0,
                   help="also score N prior samples per temperature against the real floor and the mean image "
                        "(FID, IS, NDB/K, precision/recall, brightness; trains the dataset's classifier once)")
    p.add_argument("--temperatures", type=POSITIVE, nargs="+", default=[1.0, 0.8, 0.6],
                   help="prior temperatures scored with --samples")
    p.add_argument("--judges", action=argparse.BooleanOptionalAction, default=None,
                   help="with --samples, also the pretrained judges (FAD-musicnn, basic-pitch, two-sample tests, "
                        "inversion consistency) on the inverted audio of 64 clips per set (default: on when "
                        "musicnn and basic-pitch are installed)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("fit-prior", help="refit the mixture prior to the codes of a dataset (EM, ex post)",
                       parents=[g["seed"]])
    p.add_argument("model", type=Path)
    p.add_argument("data", type=Path, help="prepared dataset (the one the model was trained on)")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--modes", type=COUNT, default=None, help="components (default: the model's num_modes)")
    p.add_argument("--samples-per-clip", type=COUNT, default=8, help="codes drawn from q(z|x) per clip")
    p.set_defaults(func=cmd_fit_prior)

    p = sub.add_parser("fit-conditional", help="condition generation on a dataset's labels (generate --where)",
                       parents=[g["seed"]])
    p.add_argument("model", type=Path)
    p.add_argument("data", type=Path, help="prepared dataset whose labels and metadata to condition on")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.set_defaults(func=cmd_fit_conditional)

    model_ops = [g["out"], g["inversion"]]
    p = sub.add_parser("generate", help="sample the prior, decode, write WAVs and PNGs", parents=model_ops + [g["seed"]])
    p.add_argument("model", type=Path)
    p.add_argument("-n", type=_number(int, low=1, high=MAX_GENERATE), default=8,
                   help=f"samples, written to disk in batches (at most {MAX_GENERATE})")
    p.add_argument("--component", type=NON_NEGATIVE_INT, default=None, help="sample one mixture component")
    p.add_argument("--temperature", type=POSITIVE, default=1.0, help="scale of the component std")
    p.add_argument("--where", nargs="+", metavar="FIELD=VALUE", default=None,
                   help="sample p(z | labels), e.g. --where instrument=violin pitch=60 (after `vae-tfp fit-conditional`)")
    p.add_argument("--method", default=CONDITIONAL_METHODS[0], choices=CONDITIONAL_METHODS,
                   help="conditional prior: a mixture fitted by EM to the labelled clips' codes (default), or the "
                        "trained components re-weighted by their responsibility for those codes")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("instrument", help="one timbre across a range of keys: WAVs and an SFZ file",
                       parents=model_ops + [g["seed"]])
    p.add_argument("model", type=Path)
    p.add_argument("--where", nargs="+", metavar="FIELD=VALUE", required=True,
                   help="the timbre, e.g. --where instrument=violin (after `vae-tfp fit-conditional`)")
    p.add_argument("--pitches", type=_key_range, default=_key_range("48-72"), help="MIDI keys (default: 48-72)")
    p.add_argument("--method", default="conditional", choices=("conditional", "direction"),
                   help="a draw of p(z | timbre, pitch) per pitch the data has, keys between them resampled by the "
                        "sampler (default); or one draw moved along the pitch direction to every key")
    p.set_defaults(func=cmd_instrument)

    p = sub.add_parser("reconstruct", help="audio files → encode → decode → audio, beside the round trip",
                       parents=model_ops + [g["refine"]])
    p.add_argument("model", type=Path)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--max-clips", type=COUNT, default=4)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("encode", help="posterior means and scales of files or datasets → .npz", parents=[g["refine"]])
    p.add_argument("model", type=Path)
    p.add_argument("sources", nargs="+", type=Path, help="audio files or prepared dataset folders")
    p.add_argument("--out", required=True, type=Path, help="latents.npz")
    p.add_argument("--split", default=None, choices=SPLITS)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("interpolate", help="decode a path between two clips (FILE or DATASET:INDEX)",
                       parents=model_ops)
    p.add_argument("model", type=Path)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=_number(int, low=2, high=1000), default=8)
    p.add_argument("--spherical", action="store_true")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("arithmetic", help="weighted averages of clips' latents, and label vectors", parents=model_ops)
    p.add_argument("model", type=Path)
    p.add_argument("clips", nargs="+", help="FILE or DATASET:INDEX")
    p.add_argument("--weights", type=FINITE, nargs="*", default=None)
    p.add_argument("--data", type=Path, default=None, help="dataset for label vectors")
    p.add_argument("--add", default=None, help="label whose mean latent is added")
    p.add_argument("--subtract", default=None, help="label whose mean latent is subtracted")
    p.add_argument("--amount", type=FINITE, default=1.0)
    p.set_defaults(func=cmd_arithmetic)

    p = sub.add_parser("project", help="2-D map of a dataset's latents coloured by label (PNG + CSV)",
                       parents=[g["out"]])
    p.add_argument("model", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--method", choices=("umap", "pca"), default="umap")
    p.add_argument("--split", default=None, choices=SPLITS)
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("report", help="a self-contained HTML page of a model's samples and reconstructions",
                       parents=[g["out"], g["seed"]])
    p.add_argument("model", type=Path)
    p.add_argument("--files", nargs="*", type=Path, default=[], help="audio files to reconstruct")
    p.add_argument("--interpolate", nargs=2, default=None, metavar=("A", "B"))
    p.add_argument("-n", type=_number(int, low=1, high=256), default=8)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the main job on the embedded dataset", parents=[g["spec_small"], g["workers"]])
    p.add_argument("--out", type=Path, default=Path("outputs/demo"))
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--preset", default="small", choices=presets, help="model preset to train (default: small)")
    p.add_argument("--epochs", type=COUNT, default=30)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VaeTfpError as err:
        if args.debug:
            raise
        print(f"vae-tfp {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a write or read that no site above named: still one line, the real cause
        if args.debug:
            raise
        from ..files import os_error_message

        print(f"vae-tfp {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vae-tfp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
