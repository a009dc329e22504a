"""The embedded-data jobs of vae_tfp/demo.py: the smoke setup and the demo datasets.

`run_demo` itself runs end to end in tests/test_browser.py (its report opened in Chromium).
"""

import pytest

from vae_tfp.data.dataset import open_dataset
from vae_tfp.apps.demo import ensure_demo_data, smoke_setup


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return smoke_setup(tmp_path_factory.mktemp("smoke"), train_model=False)


def test_smoke_setup_renders_three_instruments_and_prepares_them_tiny(smoke):
    data = open_dataset(smoke["notes"])
    assert data.config.shape == (64, 64, 1)
    assert sorted(data.manifest["labels"]) == ["flute", "piano", "violin"]
    assert len({c["source"] for c in data.clips}) == 3 * 5  # 3 instruments x 5 pitches at one velocity
    assert "model" not in smoke


def test_ensure_demo_data_prepares_once_and_reuses(smoke, tmp_path):
    root = smoke["audio"].parent  # rendered already: not rendered again
    lines = []
    first = ensure_demo_data(root, spec="tiny", log=lines.append)
    assert set(first) == {"audio", "notes", "chorales"} and first["notes"].name == "notes-tiny"
    assert not any("rendered" in line for line in lines)
    stamps = {k: (first[k] / "manifest.json").stat().st_mtime_ns for k in ("notes", "chorales")}
    lines.clear()
    again = ensure_demo_data(root, spec="tiny", log=lines.append)
    assert again == first and lines == []
    assert {k: (again[k] / "manifest.json").stat().st_mtime_ns for k in stamps} == stamps
    assert open_dataset(again["chorales"]).config == open_dataset(again["notes"]).config


def test_ensure_music_data_names_the_package_when_missing_and_prepares_once(smoke, tmp_path):
    from vae_tfp.apps.demo import MUSIC_PACKAGE, ensure_music_data
    from vae_tfp.errors import DatasetError

    with pytest.raises(DatasetError, match=f"apt-get install {MUSIC_PACKAGE}"):
        ensure_music_data(tmp_path / "data", source=tmp_path / "not-installed")
    assert not (tmp_path / "data" / "singularity").exists()
    source = smoke["audio"] / "chorales"  # stands in for the package's tracks
    folder = ensure_music_data(tmp_path / "data", source=source, log=lambda _: None)
    data = open_dataset(folder)
    assert folder.name == "singularity" and data.config.shape == (512, 512, 1) and data.manifest["clip_hop"] == 3.0
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert ensure_music_data(tmp_path / "data", source=tmp_path / "gone") == folder  # reused, source not read
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp


def test_smoke_setup_reuses_what_its_folder_holds(tmp_path, monkeypatch):
    """The notebooks' SMOKE runs share one setup: a second call (here through $VAE_TFP_SMOKE_DIR)
    renders, prepares and trains nothing; asking for more epochs continues the model."""
    import json

    from vae_tfp.apps.demo import SMOKE_DIR_ENV

    first = smoke_setup(tmp_path, epochs=1)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    monkeypatch.setenv(SMOKE_DIR_ENV, str(tmp_path))
    assert smoke_setup(epochs=1) == first
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert json.loads((first["sharpened"] / "config.json").read_text())["adversarial"]["epochs"] == 1
    smoke_setup(epochs=2)
    assert len(json.loads((first["model"] / "history.json").read_text())) == 2
    # the sharpened copy follows the model it was made from
    history = json.loads((first["sharpened"] / "history.json").read_text())
    assert [h.get("stage", 1) for h in history] == [1, 1, 2]


def test_the_demo_report_opens_with_the_committed_models(shared_smoke, tmp_path):
    """`make demo`'s report: the committed models first (a sharpened one with its stage-1 decoder's
    samples and reconstructions beside), then the run's own model under its own heading."""
    import re

    from vae_tfp.apps.demo import committed_report_models
    from vae_tfp.apps.report import write_report
    from vae_tfp.audio.spectrogram import Inversion

    audio = shared_smoke["audio"]
    lead = committed_report_models([shared_smoke["sharpened"], tmp_path / "not_a_model"], audio)
    assert len(lead) == 1 and lead[0].files and lead[0].interpolate
    held_out = open_dataset(shared_smoke["notes"]).split_clips("test")
    assert str(lead[0].files[0]) in {c["source"] for c in held_out}  # held out of the model's training
    index = write_report(shared_smoke["model"], tmp_path / "report", lead=lead, n_samples=2,
                         inversion=Inversion(n_iter=2), model_title="This run")
    page = index.read_text()
    headings = re.findall(r"<h([23])>([^<]*)</h\1>", page)
    assert headings[0][1].startswith("The committed model") and ("2", "This run") in headings
    assert headings.index(("2", "This run")) > headings.index(("3", "Samples from the prior, before / after the "
                                                                  "adversarial stage"))
    assert page.count("stage 1: ") >= 2  # both draws by the stage-1 decoder
    assert "_reconstruction_stage1" in page  # and the reconstruction by it, beside the stage-2 one
    for src in re.findall(r'src="([^"]+)"', page):
        assert (index.parent / src).is_file(), src
