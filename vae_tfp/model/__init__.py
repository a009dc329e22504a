"""The model: the mixture prior (:mod:`.prior`), the encoder, decoder and VAE (:mod:`.networks`),
what an architecture costs (:mod:`.cost`), training (:mod:`.training`, its per-epoch
:mod:`.callbacks`, the device set-up in :mod:`.devices`), the prior's refit (:mod:`.prior_fit`)
and model folders (:mod:`.saving`). The configs live in :mod:`vae_tfp.config`."""
