"""What an architecture costs, from its :class:`~vae_tfp.config.ModelConfig` alone: parameters,
multiply-accumulates per example, and the activations kept for the backward pass."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config's validation counts parameters here: no import at run time
    from ..config import ModelConfig


def parameter_count(config: ModelConfig) -> int:
    """Parameters of the encoder, decoder and prior (checked against Keras in the tests)."""
    n = sum(l["kernel"] ** 2 * l["c_in"] * l["c_out"] + l["c_out"] + (4 * l["c_out"] if l["batch_norm"] else 0)
            for l in config.conv_layers())
    n += sum((n_in + 1) * n_out for n_in, n_out, _ in config.dense_layers().values())
    n += 2 * config.num_modes * config.latent_dim + config.num_modes  # prior means, scales, mixture logits
    return n


def count_flops(config: ModelConfig) -> dict[str, int]:
    """Exact analytic multiply-accumulate count of one forward pass per example.

    Counts conv and dense MACs (the bulk); batch norm, activations, the distribution layers and
    the KL are not counted. A training step costs 3x the forward pass (forward, gradient w.r.t.
    activations, gradient w.r.t. weights) less the first layer's gradient w.r.t. the input image,
    which is never computed.

    Returns:
        ``{"encoder_macs", "decoder_macs", "forward_macs", "forward_flops", "train_flops"}``.
    """
    convs, dense = config.conv_layers(), {k: n_in * n_out * t for k, (n_in, n_out, t) in config.dense_layers().items()}
    enc = sum(l["macs"] for l in convs if l["name"].startswith("enc")) + dense["enc_params"]
    dec = sum(l["macs"] for l in convs if l["name"].startswith("dec")) + dense["dec_dense"]
    fwd = enc + dec
    return {"encoder_macs": enc, "decoder_macs": dec, "forward_macs": fwd, "forward_flops": 2 * fwd,
            "train_flops": 6 * fwd - 2 * convs[0]["macs"]}


def activation_bytes_per_example(config: ModelConfig, *, mixed_precision: bool = False) -> int:
    """The conv layers' output activations of one example, kept for the backward pass (bytes)."""
    per_value = 2 if mixed_precision else 4
    return sum(math.prod(l["out_hw"]) * l["c_out"] for l in config.conv_layers()) * per_value
