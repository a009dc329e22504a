"""vae_tfp/model/devices.py: what training runs on, determinism, and the GPU op audit.

The audit (which op types the traced train step contains, against the ops that TensorFlow has
no deterministic GPU kernel for) lives here, in the tests: the package only decides the plan.
"""

import pytest
import tensorflow as tf

from vae_tfp.config import MODEL_PRESETS, DecoderBlock, EncoderBlock, model_preset
from vae_tfp.model.networks import VAE, make_optimizer

# Op types that TensorFlow refuses to run on a GPU under op determinism ("A deterministic GPU
# implementation of ... is not currently available"). Source: the error messages compiled into
# TensorFlow 2.21's libtensorflow_cc.so.2 (`strings libtensorflow_cc.so.2 | grep "deterministic GPU
# implementation"`) and TF's determinism RFC (tensorflow/community rfcs/20210119-determinism.md), by
# op type. Left out as conditional: FusedBatchNormGrad* (only when batch norm is not training) and
# DepthwiseConv2dNativeBackpropFilter (only with cuDNN older than 7.6.3).
NONDETERMINISTIC_GPU_OPS = frozenset({
    "ResizeNearestNeighborGrad", "AdjustContrast", "AdjustContrastv2", "SparseTensorDenseMatMul",
    "CropAndResizeGradBoxes", "CropAndResizeGradImage", "SegmentSum", "SegmentProd", "SegmentMin", "SegmentMax",
    "SegmentMean", "UnsortedSegmentSum", "UnsortedSegmentProd", "UnsortedSegmentMin", "UnsortedSegmentMax",
})


def same_layer_kinds(config, width: int = 4):
    """The preset with every layer ``width`` channels wide (same kinds, strides, upsampling, shapes):
    the op types of its train step are the preset's, at a fraction of the tracing cost."""
    steps = config.latent_steps
    return config.replace(
        encoder=tuple(EncoderBlock(width, *b[1:]) for b in config.encoder),
        decoder=tuple(DecoderBlock(width, *b[1:]) for b in config.decoder),
        decoder_shape=config.decoder_shape[:2] + (width,),
        latent_dim=steps if steps > 1 else min(config.latent_dim, 4), num_modes=2)


def _stage_two(config, broadcast_upsampling: bool, jit_compile: bool, variant: dict):
    from vae_tfp.config import AdversarialConfig
    from vae_tfp.model.adversarial import AdversarialStage, make_adversarial_optimizers
    from vae_tfp.model.networks import make_decoder, make_encoder
    from vae_tfp.model.prior import make_prior

    adversarial = AdversarialConfig(filters=4, **variant)
    decoder = make_decoder(config, xla=broadcast_upsampling, noise=adversarial.decoder_noise,
                           noise_gain=adversarial.noise_lr_multiplier)
    stage = AdversarialStage(make_encoder(config), decoder,
                             make_prior(config.latent_dim, config.num_modes), config, adversarial)
    g_opt, d_opt = make_adversarial_optimizers(adversarial)
    stage.compile(optimizer=g_opt, d_optimizer=d_opt, jit_compile=jit_compile)
    stage(tf.zeros((1,) + tuple(config.input_shape)))
    stage.optimizer.build(stage.decoder.trainable_variables)
    stage.d_optimizer.build(stage.discriminator.trainable_variables)
    return stage


def train_step_op_types(config, *, broadcast_upsampling: bool, jit_compile: bool = False, batch_size: int = 2,
                        stage: int = 1, variant: dict | None = None) -> set:
    """Op types of the traced train step (forward, gradient, optimizer) of stage 1 (the VAE) or
    stage 2 (the adversarial stage, with the AdversarialConfig fields of ``variant``), nested
    functions included."""
    if stage == 2:
        vae = _stage_two(config, broadcast_upsampling, jit_compile, variant or {})
    else:
        vae = VAE(config, xla=broadcast_upsampling)
        vae.compile(optimizer=make_optimizer(config), jit_compile=jit_compile)
        vae(tf.zeros((1,) + tuple(config.input_shape)), training=False)
        vae.optimizer.build(vae.trainable_variables)
    step = tf.function(vae.train_step, jit_compile=jit_compile)
    graph = step.get_concrete_function(tf.TensorSpec((batch_size,) + tuple(config.input_shape), tf.float32)).graph
    graph_def = graph.as_graph_def()
    ops = {n.op for n in graph_def.node}
    for function in graph_def.library.function:
        ops |= {n.op for n in function.node_def}
    return ops


def test_the_narrow_variant_keeps_the_layer_kinds():
    seed = model_preset("seed")
    narrow = same_layer_kinds(seed)
    assert narrow.parameter_estimate() * 1000 < seed.parameter_estimate()
    assert [b[1:] for b in narrow.encoder] == [b[1:] for b in seed.encoder]
    assert [b[1:] for b in narrow.decoder] == [b[1:] for b in seed.decoder]
    assert same_layer_kinds(model_preset("music")).latent_steps == 64


def _fake_gpu(monkeypatch):
    import tensorflow as tf

    real = tf.config.list_physical_devices
    fake = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake] if kind == "GPU" else real(kind))


def test_determinism_defaults_follow_the_device(monkeypatch):
    from vae_tfp.model.devices import determinism_plan

    assert determinism_plan(None, False) == {"op_determinism": True, "broadcast_upsampling": False, "gpu": False}
    assert determinism_plan(None, True)["op_determinism"] is False  # never with XLA
    _fake_gpu(monkeypatch)
    assert determinism_plan(None, False)["op_determinism"] is False
    assert determinism_plan(True, False) == {"op_determinism": True, "broadcast_upsampling": True, "gpu": True}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(MODEL_PRESETS))
def test_the_adversarial_train_step_has_deterministic_gpu_kernels_when_determinism_is_on(preset, monkeypatch):
    """The same audit for stage 2 (decoder + discriminator + two Adams), as it would run on a GPU with
    determinism requested: the discriminator's pooling and LeakyReLU gradients included."""
    from vae_tfp.model.devices import determinism_plan

    _fake_gpu(monkeypatch)
    config = same_layer_kinds(model_preset(preset))
    plan = determinism_plan(True, False)
    ops = train_step_op_types(config, broadcast_upsampling=plan["broadcast_upsampling"], stage=2)
    assert plan["op_determinism"] and {"AvgPoolGrad", "LeakyReluGrad", "Conv2DBackpropFilter"} <= ops
    assert not ops & NONDETERMINISTIC_GPU_OPS, sorted(ops & NONDETERMINISTIC_GPU_OPS)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["adaptive_weight", "decoder_noise", "consistency_weight"])
def test_the_adversarial_variants_have_deterministic_gpu_kernels_when_determinism_is_on(variant, monkeypatch):
    """Stage 2's options that change its train step, audited on the demo model's preset: the adaptive
    weight (two more gradients and norms), the decoder's noise input (a seeded random op) and the
    consistency term (STFTs, a Griffin-Lim loop and their gradients)."""
    from vae_tfp.model.devices import determinism_plan

    _fake_gpu(monkeypatch)
    config = same_layer_kinds(model_preset("default"))
    plan = determinism_plan(True, False)
    ops = train_step_op_types(config, broadcast_upsampling=plan["broadcast_upsampling"], stage=2,
                              variant={variant: 1.0 if variant == "consistency_weight" else True})
    if variant == "decoder_noise":
        assert "RandomStandardNormal" in ops
    if variant == "consistency_weight":
        assert {"RFFT", "IRFFT"} <= ops and any("While" in op for op in ops), sorted(ops)
    assert not ops & NONDETERMINISTIC_GPU_OPS, sorted(ops & NONDETERMINISTIC_GPU_OPS)


@pytest.mark.slow
@pytest.mark.parametrize("jit", [False, True], ids=["no-xla", "xla"])
@pytest.mark.parametrize("preset", sorted(MODEL_PRESETS))  # a new preset is audited too
def test_train_step_ops_have_deterministic_gpu_kernels_when_determinism_is_on(preset, jit, monkeypatch):
    """The op audit: the traced train step (forward + gradient + Adam) of every preset (a narrow variant
    with the same layer kinds), as it would run on a GPU with determinism requested. Before the fix the decoder kept Keras' UpSampling2D there, whose
    gradient ResizeNearestNeighborGrad has no deterministic GPU kernel: training stopped at step 1."""
    from vae_tfp.model.devices import determinism_plan

    _fake_gpu(monkeypatch)
    config = same_layer_kinds(model_preset(preset))
    plan = determinism_plan(True, jit)
    ops = train_step_op_types(config, broadcast_upsampling=plan["broadcast_upsampling"], jit_compile=jit)
    before = train_step_op_types(config, broadcast_upsampling=jit, jit_compile=jit)  # the decoder before the fix
    print(f"\n{preset} {'xla' if jit else 'no-xla'}: determinism {'on' if plan['op_determinism'] else 'off'}; "
          f"{len(ops)} op types: {sorted(ops)}\n  breaking GPU determinism before: "
          f"{sorted(before & NONDETERMINISTIC_GPU_OPS)}, after: {sorted(ops & NONDETERMINISTIC_GPU_OPS)}")
    if plan["op_determinism"]:
        assert not ops & NONDETERMINISTIC_GPU_OPS
    if not jit:
        assert "ResizeNearestNeighborGrad" in before  # the audit sees the op that broke GPU training
