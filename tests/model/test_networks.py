import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from vae_tfp.config import MODEL_PRESETS, ModelConfig, model_preset
from vae_tfp.errors import ConfigError
from vae_tfp.model.networks import VAE, build_vae, make_decoder, make_encoder
from vae_tfp.model.cost import count_flops
from vae_tfp.model.prior import make_prior, prior_variables

tfd = tfp.distributions


def keras_parameter_count(cfg: ModelConfig) -> int:
    """What Keras counts for a built VAE: encoder, decoder, and the prior's means, scales and logits."""
    vae = VAE(cfg)
    vae(tf.zeros((1,) + cfg.input_shape))
    prior = sum(int(np.prod(v.shape)) for v in vae.prior.trainable_variables)
    return vae.encoder.count_params() + vae.decoder.count_params() + prior


def test_prior_is_a_trainable_mixture():
    prior = make_prior(5, 3)
    assert prior.batch_shape == () and prior.event_shape == (5,)
    assert prior.sample(7, seed=1).shape == (7, 5)
    v = prior_variables(prior)
    assert v["locs"].shape == (3, 5) and v["scales_raw"].shape == (3, 5)
    np.testing.assert_allclose(prior.mixture_distribution.probs_parameter(), [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(tf.convert_to_tensor(prior.components_distribution.scale.diag), 1.0, rtol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "laplace"])
def test_shapes_of_posterior_and_likelihood(likelihood):
    cfg = model_preset("tiny").replace(likelihood=likelihood)
    q = make_encoder(cfg)(np.zeros((2, 64, 64, 1), np.float32))
    assert q.batch_shape == (2,) and q.event_shape == (cfg.latent_dim,)
    p = make_decoder(cfg)(tf.convert_to_tensor(q))
    assert p.batch_shape == (2,) and p.event_shape == (64, 64, 1)
    mean = p.mean().numpy()
    assert mean.shape == (2, 64, 64, 1) and np.isfinite(mean).all()
    assert p.log_prob(np.full((2, 64, 64, 1), 0.5, np.float32)).shape == (2,)


def test_bernoulli_decoder_takes_logits_not_sigmoid():
    dec = make_decoder(model_preset("tiny").replace(likelihood="bernoulli"))
    last_conv = dec.get_layer("dec_params")
    assert last_conv.activation.__name__ == "linear"


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_parameter_estimate_matches_keras(name):
    cfg = MODEL_PRESETS[name]
    if name == "seed":
        pytest.skip("88 M parameters: checked analytically in test_seed_is_the_original_architecture")
    assert keras_parameter_count(cfg) == cfg.parameter_estimate()


def test_seed_is_the_original_architecture():
    cfg = model_preset("seed")
    assert cfg.latent_dim == 100 and cfg.likelihood == "bernoulli" and cfg.learning_rate == 5e-4
    assert [b.filters for b in cfg.encoder] == [32, 64, 128, 256, 256]
    assert [b.filters for b in cfg.decoder] == [128, 64, 32, 128, 64, 32]
    assert cfg.encoder[1].max_pool and all(b.batch_norm for b in cfg.encoder)
    assert cfg.encoder_output_shape() == (8, 8, 256)
    dense = 8 * 8 * 256 * (100 + 5050) + 100 + 5050
    assert dense > 84e6  # the Dense layer alone, as the issue says
    flops = count_flops(cfg)
    assert 9e9 < flops["decoder_macs"] < 11e9


def test_default_is_far_cheaper_than_seed():
    seed, default = count_flops(model_preset("seed")), count_flops(model_preset("default"))
    assert default["forward_macs"] * 5 < seed["forward_macs"]
    assert model_preset("default").parameter_estimate() * 10 < model_preset("seed").parameter_estimate()
    assert model_preset("default").parameter_estimate() * 4 < 30e6  # fits the 30 MB demo budget


def test_music_preset_is_a_latent_sequence_within_the_cost_and_size_budget():
    """``music``: 64 latent steps along time (one per 93 ms), decoder positions every 2 frames, at ~1.3x
    the forward cost of ``default`` and a fraction of its weights."""
    from vae_tfp.config import model_spectrogram

    music, default = model_preset("music"), model_preset("default")
    assert model_spectrogram("music").shape == music.input_shape == (512, 512, 1)
    assert (music.latent_steps, music.step_dim, music.latent_dim) == (64, 8, 512)
    assert music.encoder_output_shape() == (4, 64, 128)  # 64 columns: one posterior step each
    decoder_columns = lambda c: max(l["out_hw"][1] for l in c.conv_layers() if l["name"].startswith("dec"))  # noqa: E731
    assert decoder_columns(music) == 16 * decoder_columns(default) == 256  # one column per 2 frames (23 ms)
    assert count_flops(music)["forward_macs"] < 1.3 * count_flops(default)["forward_macs"]
    assert music.parameter_estimate() == 1_262_800 and music.parameter_estimate() * 4 < 30e6  # committed model <= 30 MB
    assert music.free_bits * music.latent_dim == 512  # the KL budget per clip (nats) not charged to the encoder


SEQUENCE = model_preset("tiny").replace(name="tiny-sequence", latent_dim=16, latent_steps=8)


def test_a_latent_sequence_is_local_in_time_and_its_posterior_is_diagonal():
    """Step 0's code reaches only the first columns of the image; the encoder's steps follow the columns."""
    q = make_encoder(SEQUENCE)(np.zeros((3, 64, 64, 1), np.float32))
    assert q.event_shape == (16,) and isinstance(q.tensor_distribution, tfd.MultivariateNormalDiag)
    decoder = make_decoder(SEQUENCE)
    z = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    moved = z.copy()
    moved[0, :2] += 3.0  # step 0: dimensions 0 and 1 (step-major)
    a, b = (decoder(v).mean().numpy()[0, :, :, 0] for v in (z, moved))
    changed = np.flatnonzero(np.abs(a - b).max(axis=0) > 1e-6)
    assert changed.size and changed.max() < 32, changed  # the decoder's receptive field, not the whole clip
    # the encoder: an image that differs only in its last columns changes only the last steps' posterior
    x = np.zeros((2, 64, 64, 1), np.float32)
    x[1, :, 56:] = 1.0
    means = make_encoder(SEQUENCE)(x).mean().numpy().reshape(2, 8, 2)
    assert np.allclose(means[0, :4], means[1, :4]) and not np.allclose(means[0, 4:], means[1, 4:])


def test_a_latent_sequence_needs_matching_columns_and_a_divisible_latent_dim():
    with pytest.raises(ConfigError, match="multiple of latent_steps"):
        SEQUENCE.replace(latent_dim=15)
    with pytest.raises(ConfigError, match="8 columns wide"):
        SEQUENCE.replace(decoder_shape=(8, 4, 16), decoder=((16, 3, 2, False), (8, 3, 2, False), (8, 3, (2, 4), False)))
    assert ModelConfig.from_dict(SEQUENCE.to_dict()) == SEQUENCE
    strided = model_preset("music")
    assert ModelConfig.from_dict(json.loads(json.dumps(strided.to_dict()))) == strided  # [frequency, time] strides


def test_loss_is_per_example_and_independent_of_batch_size():
    """Duplicating a batch must not change the loss (no sum over the batch)."""
    cfg = model_preset("tiny").replace(kl_warmup_steps=0)
    vae = build_vae(cfg, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (4, 64, 64, 1)).astype(np.float32)
    r1 = vae.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    r2 = vae.evaluate(np.concatenate([x, x]), batch_size=8, verbose=0, return_dict=True)
    # Both terms are sampled; with 4 vs 8 draws of the same examples they agree within MC noise.
    assert r2["recon"] == pytest.approx(r1["recon"], rel=0.05)
    assert r2["kl"] == pytest.approx(r1["kl"], rel=0.5, abs=5)
    assert r1["recon"] > 64 * 64 * 0.01  # summed over pixels, not a per-pixel mean


def test_training_updates_the_prior():
    vae = build_vae(model_preset("tiny"), seed=0)
    before = {k: v.numpy().copy() for k, v in prior_variables(vae.prior).items()}
    x = np.random.default_rng(0).uniform(0, 1, (16, 64, 64, 1)).astype(np.float32)
    vae.fit(x, batch_size=8, epochs=1, verbose=0)
    for k, v in prior_variables(vae.prior).items():
        assert np.abs(v.numpy() - before[k]).max() > 1e-5, k
    assert {id(v) for v in prior_variables(vae.prior).values()} <= {id(v) for v in vae.trainable_variables}
    assert not any("prior" in w.name for w in vae.encoder.weights)  # saved once, in the prior's file


def test_beta_warm_up():
    vae = VAE(model_preset("tiny").replace(beta=2.0, kl_warmup_steps=10))
    assert [float(vae.beta_at(s)) for s in (0, 5, 10, 50)] == [0.0, 1.0, 2.0, 2.0]


@pytest.mark.parametrize("bad", [
    {"latent_dim": 10**9}, {"latent_dim": 0}, {"likelihood": "poisson"}, {"spectrogram": "default"}, {"spectrogram": "huge"},
    {"decoder": ((8, 3, 2, False),)}, {"encoder": ((10**7, 3, 2, False, False),)}, {"beta": -1.0},
    {"encoder": (("8", 3, 2, False, False),)},
])
def test_invalid_model_configs(bad):
    with pytest.raises(ConfigError):
        model_preset("tiny").replace(**bad)


def test_model_config_json_round_trip():
    import json

    for cfg in MODEL_PRESETS.values():
        assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_kl_is_counted_once():
    """tfp.layers' activity regulariser sees both outputs of DistributionLambda (the distribution
    and its sample) and would add the KL twice (tensorflow/probability#599, #1215)."""
    vae = VAE(model_preset("tiny"))
    x = np.random.default_rng(0).uniform(0, 1, (8, 64, 64, 1)).astype(np.float32)

    @tf.function
    def step(b):
        q = vae.encoder(b, training=True)
        z = tf.convert_to_tensor(q)
        return tf.add_n(vae.encoder.losses), tf.reduce_mean(q.log_prob(z) - vae.prior.log_prob(z))

    added, explicit = step(x)
    np.testing.assert_allclose(added.numpy(), explicit.numpy(), rtol=1e-5)


def test_upsampling_matches_keras_and_compiles_with_xla(rng):
    import tf_keras as keras

    from vae_tfp.model.networks import UpSampling2D

    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    np.testing.assert_array_equal(UpSampling2D(2)(x).numpy(), keras.layers.UpSampling2D(2)(x).numpy())

    layer = UpSampling2D(2)

    @tf.function(jit_compile=True)
    def grad(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = tf.reduce_sum(layer(v) ** 2)
        return tape.gradient(y, v)

    np.testing.assert_allclose(grad(tf.constant(x)).numpy(), 8 * x, rtol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "laplace"])
def test_sub_pixel_output(rng, likelihood):
    cfg = model_preset("tiny").replace(decoder=((16, 3, 2, False), (8, 3, 2, False)), output_upsample=2,
                                       likelihood=likelihood)
    dec = make_decoder(cfg)
    assert dec.get_layer("dec_params").output_shape == (None, 32, 32, 4 * cfg.output_channels())
    p = dec(rng.standard_normal((3, cfg.latent_dim)).astype(np.float32))
    assert p.event_shape == (64, 64, 1) and p.mean().shape == (3, 64, 64, 1)
    assert keras_parameter_count(cfg) == cfg.parameter_estimate()


def test_depth_to_space_places_each_channel_in_its_sub_pixel():
    from vae_tfp.model.networks import DepthToSpace

    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(DepthToSpace(2)(x).numpy()[0, :, :, 0], [[0, 1], [2, 3]])


@pytest.mark.parametrize("bad", [{"output_upsample": 0}, {"output_upsample": 3}, {"output_upsample": True}])
def test_invalid_output_options(bad):
    with pytest.raises(ConfigError):
        model_preset("tiny").replace(**bad)


def test_conv_layers_walk_every_conv_at_its_size():
    cfg = model_preset("default")
    layers = cfg.conv_layers()
    assert [l["name"] for l in layers][:2] == ["enc_conv0", "enc_conv1"] and layers[-1]["name"] == "dec_params"
    assert len(layers) == len(cfg.encoder) + len(cfg.decoder) + 1
    assert layers[0]["out_hw"] == (128, 128)  # the 4x4 stride-4 stem
    # frequency first: 512 rows x 16 columns, then 32 frames per position (sub-pixel along time)
    assert layers[-1]["in_hw"] == layers[-1]["out_hw"] == (512, 16) and layers[-1]["c_out"] == 32
    dec = make_decoder(cfg)
    assert dec.get_layer("dec_conv2").output_shape[1:] == layers[-2]["out_hw"] + (64,) == (512, 16, 64)


def test_decoder_upsamples_frequency_and_time_separately(rng):
    """``[frequency, time]`` upsampling factors: a tall start keeps frequency resolution early."""
    import json

    cfg = model_preset("tiny").replace(decoder_shape=(16, 4, 8),
                                       decoder=((8, 3, (2, 4), False), (8, 3, (2, 4), False)))
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.to_dict()["decoder"][0] == [8, 3, [2, 4], False]
    dec = make_decoder(cfg)
    assert dec.get_layer("dec_conv0").output_shape == (None, 32, 16, 8)
    assert [l["out_hw"] for l in cfg.conv_layers() if l["name"].startswith("dec")] == [(32, 16), (64, 64), (64, 64)]
    z = rng.standard_normal((2, cfg.latent_dim)).astype(np.float32)
    xla = make_decoder(cfg, xla=True)
    xla.set_weights(dec.get_weights())
    np.testing.assert_allclose(xla(z).mean().numpy(), dec(z).mean().numpy(), rtol=1e-5, atol=1e-6)
    prior = sum(int(np.prod(v.shape)) for v in VAE(cfg).prior.trainable_variables)  # means, scales, mixture logits
    assert prior == 2 * 3 * 4 + 3
    assert keras_parameter_count(cfg) == cfg.parameter_estimate()


@pytest.mark.parametrize("up", [(2, 4, 1), (0, 2), (2, 9), ("2", 2), (True, 2)])
def test_invalid_upsampling_factors(up):
    with pytest.raises(ConfigError):
        model_preset("tiny").replace(decoder_shape=(16, 4, 8), decoder=((8, 3, up, False), (8, 3, (2, 4), False)))


def test_depth_to_space_matches_tensorflow_and_splits_frequency_and_time(rng):
    from vae_tfp.model.networks import DepthToSpace

    x = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(DepthToSpace(2)(x).numpy(), tf.nn.depth_to_space(x, 2).numpy())
    y = DepthToSpace((1, 4))(x).numpy()  # time only: 4 consecutive frames per position
    assert y.shape == (2, 3, 20, 2)
    np.testing.assert_array_equal(y[0, 1, 4:8, 1], x[0, 1, 1, [1, 3, 5, 7]])


def test_posterior_starts_at_the_configured_scale():
    x = np.zeros((2, 64, 64, 1), np.float32)
    for scale, expected in ((0.05, 0.05), (0.0, np.log(2.0))):  # 0: Keras' zero bias, softplus(0)
        q = make_encoder(model_preset("tiny").replace(posterior_init_scale=scale))(x)
        cov = q.covariance().numpy()
        np.testing.assert_allclose(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), expected, rtol=1e-3)
        assert np.abs(cov - np.diag(np.diagonal(cov[0]))).max() < 1e-6  # still diagonal at the start




def _prior_values(vae):
    return {k: v.numpy().copy() for k, v in prior_variables(vae.prior).items()}


def _moved(vae, before):
    return {k: float(np.abs(v.numpy() - before[k]).max()) for k, v in prior_variables(vae.prior).items()}


def test_prior_learns_in_the_first_steps_of_the_default_preset():
    """The prior learns from the codes' cross-entropy from the very first step, where the warm-up's β is
    still 0 (a prior trained through the KL alone would not move there)."""
    vae = build_vae(model_preset("default"), seed=0)
    before = _prior_values(vae)
    x = np.random.default_rng(0).uniform(0, 0.2, (4, 512, 512, 1)).astype(np.float32)
    vae.fit(x[:2], batch_size=2, epochs=1, verbose=0)  # one step
    assert all(d > 1e-5 for d in _moved(vae, before).values()), _moved(vae, before)


@pytest.mark.parametrize("changes", [{"free_bits": 1e6}, {"beta": 0.0}], ids=["free-bits-everywhere", "beta-zero"])
def test_prior_learns_whatever_the_encoder_side_does(changes):
    vae = build_vae(model_preset("tiny").replace(**changes), seed=0)
    before = _prior_values(vae)
    x = np.random.default_rng(0).uniform(0, 1, (16, 64, 64, 1)).astype(np.float32)
    vae.fit(x, batch_size=8, epochs=1, verbose=0)
    assert all(d > 1e-5 for d in _moved(vae, before).values()), _moved(vae, before)


def _penalty_and_kl(vae, x):
    from vae_tfp.model.prior import marginal_kl

    with tf.GradientTape(persistent=True) as tape:
        q = vae.encoder(x, training=True)
        z = tf.convert_to_tensor(q)
        penalty = tf.add_n(vae.encoder.losses)
        kl_dims = tf.reduce_mean(marginal_kl(q, z, vae.prior), axis=0)
        kl = tf.reduce_mean(q.log_prob(z) - vae.prior.log_prob(z))
    return tape, penalty, kl, kl_dims


def test_free_bits_charge_kl_plus_the_slack_of_dimensions_below_the_floor():
    cfg = model_preset("tiny").replace(free_bits=0.5)
    vae = VAE(cfg)
    x = np.random.default_rng(0).uniform(0, 1, (8, 64, 64, 1)).astype(np.float32)
    tape, penalty, kl, kl_dims = _penalty_and_kl(vae, x)
    expected = kl + tf.reduce_sum(tf.nn.relu(0.5 - kl_dims))
    np.testing.assert_allclose(penalty.numpy(), expected.numpy(), rtol=1e-4)
    # the penalty reaches the encoder, and never the prior (it learns from its own term)
    grads = tape.gradient(penalty, vae.encoder.trainable_variables + list(vae.prior.trainable_variables))
    enc, prior = grads[:len(vae.encoder.trainable_variables)], grads[len(vae.encoder.trainable_variables):]
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in enc)
    assert all(g is None or float(tf.reduce_max(tf.abs(g))) == 0 for g in prior)


def test_free_bits_cannot_switch_the_kl_off_wholesale():
    """Free bits per dimension keep the pull of the dimensions above their floor, even with the floor at
    the median dimension's KL (a per-example floor that high would switch the KL's gradient off)."""
    tiny = model_preset("tiny")
    x = np.random.default_rng(0).uniform(0, 1, (8, 64, 64, 1)).astype(np.float32)
    _, _, kl, kl_dims = _penalty_and_kl(VAE(tiny), x)
    floor = float(np.median(kl_dims.numpy()))  # half the dimensions above it
    vae = VAE(tiny.replace(free_bits=floor))
    tape, penalty, _, _ = _penalty_and_kl(vae, x)
    grads = tape.gradient(penalty, vae.encoder.get_layer("enc_params").trainable_variables)
    assert float(tf.reduce_max(tf.abs(grads[0]))) > 1e-4


def test_mixture_weights_are_trainable_and_start_uniform():
    from vae_tfp.model.prior import mixture_weights

    prior = make_prior(3, 4)
    assert set(prior_variables(prior)) == {"logits", "locs", "scales_raw"}
    np.testing.assert_allclose(mixture_weights(prior), 0.25)


@pytest.mark.parametrize("n, batch, calls", [(0, 4, [1]), (1, 4, [1]), (8, 4, [4, 4]), (9, 4, [4, 4, 1])])
def test_map_batches_never_passes_an_empty_batch(n, batch, calls):
    from vae_tfp.model.networks import map_batches

    seen = []

    def fn(b, start):
        assert len(b), "empty batch"
        seen.append((len(b), start))
        return {"twice": 2 * b, "rows": np.full((len(b), 3), start, np.int64)}

    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    out = map_batches(fn, x, batch)
    assert [s for s, _ in seen] == calls  # an empty input runs fn once on one zero item
    assert out["twice"].shape == (n, 2) and out["rows"].shape == (n, 3) and out["rows"].dtype == np.int64
    np.testing.assert_array_equal(out["twice"], 2 * x)
    if n:
        assert [st for _, st in seen] == list(range(0, n, batch))
    with pytest.raises(ConfigError, match="batch_size=0"):
        map_batches(fn, x, 0)


def test_networks_on_an_empty_batch_through_map_batches():
    from vae_tfp.model.networks import map_batches, posterior_stats, reconstruction_mean

    cfg = model_preset("tiny")
    means, stds = posterior_stats(make_encoder(cfg), np.zeros((0, 64, 64, 1), np.float32))
    assert means.shape == stds.shape == (0, cfg.latent_dim)
    decoder = make_decoder(cfg)
    images = map_batches(lambda b, _: reconstruction_mean(decoder(b)).numpy(), np.zeros((0, cfg.latent_dim), np.float32), 8)
    assert images.shape == (0, 64, 64, 1)


def test_importing_the_package_adds_no_warning_filter():
    import subprocess
    import sys

    # the libraries first (TFP, numpy, requests add filters of their own), then ours
    code = ("import warnings, numpy, scipy, sklearn, librosa, tensorflow, tensorflow_probability, tf_keras, "
            "fastjsonschema, soundfile, matplotlib; before = list(warnings.filters); import vae_tfp, vae_tfp.model.networks, "
            "vae_tfp.model.training, vae_tfp.model.saving, vae_tfp.evaluation.sample_metrics, vae_tfp.evaluation.judges, vae_tfp.apps.cli, "
            "vae_tfp.apps.operations; assert warnings.filters == before, [f for f in warnings.filters if f not in before]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1500:]


def test_saving_weights_is_quiet_about_lambdas_and_leaves_the_filters_alone(tmp_path):
    import warnings

    from vae_tfp.model.saving import save_model

    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_model(build_vae(model_preset("tiny")), tmp_path / "m")
    assert not [w for w in caught if "lambda" in str(w.message)]
    assert warnings.filters == before
    from vae_tfp.model.saving import load_model

    with warnings.catch_warnings(record=True) as caught:  # loading (h5 reads serialise the config too)
        warnings.simplefilter("always")
        load_model(tmp_path / "m")
    assert not [w for w in caught if "lambda" in str(w.message)]
    assert warnings.filters == before


def test_blocks_are_named_and_stored_as_json_lists():
    from vae_tfp.config import DecoderBlock, EncoderBlock

    cfg = model_preset("music")
    assert cfg.encoder[2] == EncoderBlock(128, kernel=4, stride=(2, 1)) and cfg.encoder[2].stride == (2, 1)
    assert cfg.decoder[1] == DecoderBlock(96, upsample=(2, 1))
    raw = json.loads(json.dumps(cfg.to_dict()))
    assert raw["encoder"][2] == [128, 4, [2, 1], False, False] and raw["decoder"][1] == [96, 3, [2, 1], False]
    again = ModelConfig.from_dict(raw)
    assert again == cfg and isinstance(again.encoder[0], EncoderBlock) and isinstance(again.decoder[0], DecoderBlock)
    with pytest.raises(ConfigError, match=r"must have 4 entries \(filters, kernel, upsample, batch_norm\)"):
        cfg.replace(decoder=((8, 3, 2),))
