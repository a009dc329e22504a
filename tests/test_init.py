"""vae_tfp/__init__.py: every public name importable from the package, every module importable."""

import importlib
import pkgutil

import vae_tfp


def test_every_public_name_and_every_module_imports():
    for name in vae_tfp.__all__:
        assert getattr(vae_tfp, name) is not None, name
    modules = [m.name for m in pkgutil.walk_packages(vae_tfp.__path__, "vae_tfp.")]
    for name in modules:
        importlib.import_module(name)
    assert {"vae_tfp.audio.spectrogram", "vae_tfp.data.dataset", "vae_tfp.model.networks",
            "vae_tfp.evaluation.diagnostics", "vae_tfp.apps.cli"} <= set(modules)
