import json
import shutil
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from vae_tfp.errors import ModelFileError
from vae_tfp.model.prior import prior_variables
from vae_tfp.model.saving import load_model, read_model_info, save_model


def test_folder_layout(trained_tiny):
    names = {p.name for p in trained_tiny.iterdir()}
    assert {"config.json", "encoder.weights.h5", "decoder.weights.h5", "prior.weights.h5", "history.json"} <= names
    raw = json.loads((trained_tiny / "config.json").read_text())
    assert raw["training_manifest_sha256"] and raw["versions"]["tensorflow"].startswith("2.21")
    assert raw["model_config"]["name"] == "tiny"


def test_parts_load_separately(trained_tiny):
    gen = load_model(trained_tiny, parts=("decoder", "prior"))
    assert gen.encoder is None and gen.decoder is not None
    enc = load_model(trained_tiny, parts=("encoder",))
    assert enc.decoder is None and enc.prior is None


def test_some_parts_load_under_another_encoder(trained_tiny):
    """load_weights_into(parts=...): a saved decoder and prior under a fresh, wider encoder
    (benchmarks/encoder_fit.py --encoder-width); the encoder keeps its own initial weights."""
    from vae_tfp.model.networks import VAE
    from vae_tfp.model.saving import load_weights_into

    saved = load_model(trained_tiny)
    wider = saved.config.replace(encoder=tuple(b._replace(filters=2 * b.filters) for b in saved.config.encoder))
    vae = VAE(wider, seed=0)
    vae(np.zeros((1,) + wider.input_shape, np.float32))
    fresh = [w.copy() for w in vae.encoder.get_weights()]
    load_weights_into(vae, trained_tiny, ("decoder", "prior"))
    for a, b in zip(vae.decoder.get_weights(), saved.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name, var in prior_variables(saved.prior).items():
        np.testing.assert_array_equal(prior_variables(vae.prior)[name].numpy(), var.numpy())
    assert all(np.array_equal(a, b) for a, b in zip(vae.encoder.get_weights(), fresh))
    with pytest.raises(ModelFileError, match="encoder.weights.h5: weights do not fit"):
        load_weights_into(vae, trained_tiny, ("encoder",))


DECODE_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
from vae_tfp.model.saving import load_model
m = load_model(sys.argv[1], parts=("decoder", "prior"))
z = np.linspace(-1, 1, 2 * m.config.latent_dim, dtype=np.float32).reshape(2, -1)
np.save(sys.argv[2], m.decoder(z).mean().numpy())
np.save(sys.argv[3], m.prior.sample(3, seed=42).numpy())
"""


def test_save_load_in_fresh_process_decodes_identically(trained_tiny, tmp_path):
    from vae_tfp.model.saving import load_model as load

    outs = []
    for k in range(2):
        a, b = tmp_path / f"dec{k}.npy", tmp_path / f"pri{k}.npy"
        subprocess.run([sys.executable, "-c", DECODE_SCRIPT, str(trained_tiny), str(a), str(b)], check=True,
                       capture_output=True)
        outs.append((np.load(a), np.load(b)))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    m = load(trained_tiny, parts=("decoder", "prior"))
    z = np.linspace(-1, 1, 2 * m.config.latent_dim, dtype=np.float32).reshape(2, -1)
    np.testing.assert_array_equal(m.decoder(z).mean().numpy(), outs[0][0])


@pytest.mark.parametrize("latent_steps", [1, 8])
def test_prior_variables_after_loading_equal_the_trained_ones(tiny_dataset, tmp_path, latent_steps):
    """Also for a latent sequence (8 steps of 2 dimensions, a diagonal posterior): the folder rebuilds it."""
    from vae_tfp.config import model_preset
    from vae_tfp.model.networks import build_vae
    from vae_tfp.data.dataset import open_dataset

    config = model_preset("tiny")
    if latent_steps > 1:
        config = config.replace(latent_dim=16, latent_steps=latent_steps)
    vae = build_vae(config)
    vae.fit(open_dataset(tiny_dataset).load("train"), batch_size=8, epochs=1, verbose=0)
    save_model(vae, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for name, var in prior_variables(vae.prior).items():
        np.testing.assert_array_equal(prior_variables(loaded.prior)[name].numpy(), var.numpy())
    x = open_dataset(tiny_dataset).load("val")[:3]
    np.testing.assert_allclose(loaded.encoder(x).mean().numpy(), vae.encoder(x, training=False).mean().numpy(),
                               atol=1e-6)
    assert loaded.config == config


@pytest.fixture
def model_copy(trained_tiny, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(trained_tiny, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "decoder.weights.h5").unlink(), "decoder.weights.h5: missing"),
    (lambda d: (d / "encoder.weights.h5").write_bytes((d / "encoder.weights.h5").read_bytes()[:1000]),
     "encoder.weights.h5: content does not match"),
    (lambda d: shutil.copy(d / "decoder.weights.h5", d / "encoder.weights.h5"), "encoder.weights.h5"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json: cannot read model config"),
    (lambda d: (d / "config.json").unlink(), "config.json: missing"),
])
def test_damaged_folders_name_the_file(model_copy, damage, match):
    damage(model_copy)
    with pytest.raises(ModelFileError, match=match):
        load_model(model_copy)


@pytest.mark.parametrize("patch,match", [
    ({"model_config": {"latent_dim": 10**9}}, "latent_dim"),
    ({"model_config": {"evil": 1}}, "unknown keys"),
    ({"model_config": {"latent_dim": "4"}}, "latent_dim"),
    ({"model_config": {"spectrogram": {"n_frames": 1_000_000, "n_fft": 2_000_000}}}, "pixels|hop_length|n_fft"),
    ({"model_config": {"spectrogram": {"n_frames": 32, "hop_length": 8}}}, "does not match the spectrogram's"),
    ({"model_config": {"input_shape": [64, 64, 1]}}, "names its spectrogram instead"),
    ({"format": "pickle"}, "format"),
])
def test_tampered_configs_fail_before_building(model_copy, patch, match):
    raw = json.loads((model_copy / "config.json").read_text())
    for key, value in patch.items():
        if isinstance(value, dict):
            for k, v in value.items():
                raw[key][k] = {**raw[key][k], **v} if isinstance(v, dict) else v
        else:
            raw[key] = value
    (model_copy / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match=match):
        read_model_info(model_copy)


def test_failed_save_leaves_previous_model_intact(trained_tiny, tmp_path, monkeypatch):
    import vae_tfp.model.saving as saving
    from vae_tfp.config import model_preset
    from vae_tfp.model.networks import build_vae

    shutil.copytree(trained_tiny, tmp_path / "m")
    before = (tmp_path / "m" / "decoder.weights.h5").read_bytes()

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving, "save_prior_weights", full_disk)
    info = read_model_info(tmp_path / "m")
    with pytest.raises(ModelFileError, match="disk full .*needed.*previous model is unchanged"):
        save_model(build_vae(model_preset("tiny")), tmp_path / "m")
    assert (tmp_path / "m" / "decoder.weights.h5").read_bytes() == before
    assert load_model(tmp_path / "m").decoder is not None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("stage", ["checkpoints_moved", "old_renamed", "partial_temp"])
def test_a_save_killed_at_any_stage_is_recovered(trained_tiny, tmp_path, stage):
    """Reproduce each on-disk state a SIGKILL inside save_model can leave, then load."""
    from vae_tfp.model.saving import recover_interrupted_save

    model = tmp_path / "m"
    shutil.copytree(trained_tiny, model)
    n_ckpt = len(list((model / "checkpoints").iterdir()))
    tmp = tmp_path / ".m.saving-abc"
    if stage == "partial_temp":
        tmp.mkdir()
        (tmp / "encoder.weights.h5").write_bytes(b"half")
    else:
        shutil.copytree(trained_tiny, tmp, ignore=shutil.ignore_patterns("checkpoints"))
        shutil.move(model / "checkpoints", tmp / "checkpoints")
        if stage == "old_renamed":
            model.rename(tmp_path / ".m.old-123")
    recover_interrupted_save(model)
    assert load_model(model).decoder is not None
    assert len(list((model / "checkpoints").iterdir())) == n_ckpt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_full_disk_is_refused_before_writing(trained_tiny, tmp_path, monkeypatch):
    """HDF5 segfaults when the disk fills mid-write, so free space is checked first."""
    import collections

    import vae_tfp.model.saving as saving
    from vae_tfp.model.networks import build_vae

    shutil.copytree(trained_tiny, tmp_path / "m")
    before = (tmp_path / "m" / "encoder.weights.h5").read_bytes()
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(saving.shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 4096, 4096))
    info = read_model_info(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"disk full \(4.0 KB free, 1.1 MB needed\).* previous model is unchanged"):
        save_model(build_vae(info.model_config), tmp_path / "m")
    assert (tmp_path / "m" / "encoder.weights.h5").read_bytes() == before


def test_a_reader_never_touches_a_save_a_live_process_holds(trained_tiny, tmp_path):
    import subprocess
    import sys

    model = tmp_path / "m"
    shutil.copytree(trained_tiny, model)
    in_progress = tmp_path / ".m.saving-live"
    in_progress.mkdir()
    (in_progress / "encoder.weights.h5").write_bytes(b"half written")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from vae_tfp.files import FolderLock; "
                               "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(model)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert load_model(model).decoder is not None  # reading is fine while another process writes
        assert (in_progress / "encoder.weights.h5").read_bytes() == b"half written"  # and its save is left alone
    finally:
        holder.kill()
        holder.wait()
    read_model_info(model)  # the holder is dead: now it is a leftover, and it is cleaned
    assert not in_progress.exists()


FIXTURES = Path(__file__).parents[1] / "fixtures"


def _as_format(folder, version, *, model_config=None, drop_logits=False):
    """Rewrites a model folder as format 1 or 2 wrote it: the spectrogram config beside the model
    config, its shape repeated as ``input_shape`` (format 1 optionally with another model config or
    a prior without logits)."""
    import h5py

    from vae_tfp.files import sha256_file

    if drop_logits:
        with h5py.File(folder / "prior.weights.h5", "a") as f:
            del f["logits"]
    raw = json.loads((folder / "config.json").read_text())
    raw["format"] = f"vae_tfp.model/{version}"
    current = dict(raw["model_config"])
    raw["spectrogram_config"] = current.pop("spectrogram")
    current = {"name": current.pop("name"), "input_shape": [64, 64, 1], **current}
    raw["model_config"] = model_config or ({**current, "free_nats": 0.0} if version == 1 else current)
    raw["files"]["prior.weights.h5"] = sha256_file(folder / "prior.weights.h5")
    (folder / "config.json").write_text(json.dumps(raw))


@pytest.mark.parametrize("version", [1, 2])
def test_format_1_and_2_folders_load_when_they_need_nothing_format_2_dropped(trained_tiny, tmp_path, version):
    """The committed models are format 1 (free_nats 0, prior with logits): they load; new saves are
    format 3, whose model config holds its spectrogram config, once."""
    folder = tmp_path / f"v{version}"
    shutil.copytree(trained_tiny, folder)
    _as_format(folder, version)
    m = load_model(folder)
    assert m.config == read_model_info(trained_tiny).model_config and m.spectrogram_config.shape == (64, 64, 1)
    saved = json.loads((trained_tiny / "config.json").read_text())
    assert saved["format"] == "vae_tfp.model/3" and "spectrogram_config" not in saved
    assert "input_shape" not in saved["model_config"]
    assert read_model_info(Path(__file__).parents[2] / "saved_models" / "demo").model_config.name == "default"


@pytest.mark.parametrize("case, match", [
    ("free_nats", r"made by vae_tfp with model format vae_tfp.model/1 and its per-example KL floor free_nats=300.0"),
    ("logits", r"made by vae_tfp with model format vae_tfp.model/1 before the mixture weights were trained"),
    ("architecture", r"an architecture this version no longer builds \(decoder_dense\)")])
def test_format_1_folders_this_version_cannot_load_are_refused_in_one_line(trained_tiny, tmp_path, case, match):
    """``free_nats`` comes from a real format-1 folder: the demo model committed at b51850f (300 free nats)."""
    old = json.loads((FIXTURES / "model_format_1_free_nats.json").read_text())["model_config"]
    folder = tmp_path / case
    shutil.copytree(trained_tiny, folder)
    current = {k: v for k, v in json.loads((folder / "config.json").read_text())["model_config"].items()
               if k != "spectrogram"}
    configs = {"free_nats": old, "logits": None,
               "architecture": {**current, "input_shape": [64, 64, 1], "decoder_dense": 64}}
    _as_format(folder, 1, model_config=configs[case], drop_logits=case == "logits")
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(folder)
    assert "\n" not in str(err.value) and "retrain it with this version" in str(err.value)


@pytest.mark.parametrize("name, preset", [("demo", "default"), ("music", "music")])
def test_the_committed_models_load_and_are_their_presets(name, preset):
    """saved_models/NAME: hashes checked, rebuilt from code; the architecture is today's preset's."""
    from vae_tfp.config import model_preset

    m = load_model(Path(__file__).parents[2] / "saved_models" / name, parts=("decoder", "prior"))
    # all but the optimiser's settings, which a fine-tuning run (--init-from, --lr) sets for itself
    recipe = {"learning_rate", "kl_warmup_steps"}
    cfg = {k: v for k, v in m.config.to_dict().items() if k not in recipe}
    assert cfg == {k: v for k, v in model_preset(preset).to_dict().items() if k not in recipe}
    z = m.prior.sample(2, seed=0)
    assert m.decoder(z).mean().shape == (2,) + tuple(m.config.input_shape)
