import json

import numpy as np
import pytest

from conftest import harmonic, write
from vae_tfp.audio.spectrogram import Inversion
from vae_tfp.apps.cli import main
from vae_tfp.apps.operations import monotone_fraction


def test_generate_cli_writes_wavs_and_pngs(trained_tiny, tmp_path, capsys):
    assert main(["generate", str(trained_tiny), "-n", "2", "--out", str(tmp_path / "g"), "--iters", "4"]) == 0
    printed = capsys.readouterr().out
    assert "sample_00.wav" in printed and "results.json" in printed
    assert len(list((tmp_path / "g").glob("*.wav"))) == 2 and len(list((tmp_path / "g").glob("*.png"))) == 2


def test_reconstruct_a_file_unlike_the_training_data(trained_tiny, tmp_path):
    """A 44.1 kHz stereo FLAC, longer than a clip: works end to end; a bad file is skipped."""
    flac = write(tmp_path / "new song.flac", harmonic(1.3, 44100, channels=2), 44100, "PCM_24")
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    assert main(["reconstruct", str(trained_tiny), str(flac), str(bad), "--out", str(tmp_path / "r"),
                 "--iters", "4"]) == 0
    result = json.loads((tmp_path / "r" / "results.json").read_text())
    names = [i["name"] for i in result["items"]]
    assert names == ["new song_original", "new song_roundtrip", "new song_reconstruction"]
    assert result["skipped"][0]["path"].endswith("bad.wav")
    assert result["items"][2]["spectral_convergence"] > 0


def test_encode_files_and_datasets(trained_tiny, tiny_dataset, tmp_path):
    wav = write(tmp_path / "x.wav", harmonic(1.1, 8000), 8000)
    assert main(["encode", str(trained_tiny), str(wav), str(tiny_dataset), "--out", str(tmp_path / "z.npz")]) == 0
    z = np.load(tmp_path / "z.npz")
    assert z["means"].shape[1] == 4 and len(z["means"]) == len(z["label"]) == len(z["source"]) == len(z["scales"])
    assert z["label"][0] == "x" and set(z["label"][2:]) == {"low", "high"}


def test_interpolate_arithmetic_project(trained_tiny, tiny_dataset, tmp_path):
    a, b = f"{tiny_dataset}:0", f"{tiny_dataset}:5"
    assert main(["interpolate", str(trained_tiny), a, b, "--steps", "4", "--out", str(tmp_path / "i"),
                 "--iters", "2"]) == 0
    r = json.loads((tmp_path / "i" / "results.json").read_text())
    assert len(r["distance_to_a"]) == 4 and r["distance_to_a"][0] == 0 and (tmp_path / "i" / "sweep.wav").exists()
    assert main(["arithmetic", str(trained_tiny), a, b, "--weights", "1", "3", "--data", str(tiny_dataset),
                 "--add", "high", "--subtract", "low", "--out", str(tmp_path / "a"), "--iters", "2"]) == 0
    r = json.loads((tmp_path / "a" / "results.json").read_text())
    assert {"average", "clip_00_plus_high_minus_low"} <= {i["name"] for i in r["items"]}
    assert main(["project", str(trained_tiny), str(tiny_dataset), "--method", "pca", "--out", str(tmp_path / "p")]) == 0
    lines = (tmp_path / "p" / "map_pca.csv").read_text().splitlines()
    assert lines[0] == "x,y,label,source" and len(lines) > 10


def test_bad_clip_reference(trained_tiny, tiny_dataset, tmp_path):
    assert main(["interpolate", str(trained_tiny), f"{tiny_dataset}:9999", f"{tiny_dataset}:0",
                 "--out", str(tmp_path / "i")]) == 1


def test_monotone_fraction():
    assert monotone_fraction([0, 1, 2, 3]) == 1.0
    assert monotone_fraction([0, 2, 1, 3]) == pytest.approx(2 / 3)


def test_report_page_links_playable_files(trained_tiny, tiny_dataset, tmp_path):
    import re

    import soundfile as sf

    wav = write(tmp_path / "in.wav", harmonic(1.0, 8000), 8000)
    assert main(["report", str(trained_tiny), "--out", str(tmp_path / "rep"), "--files", str(wav), "-n", "2",
                 "--interpolate", f"{tiny_dataset}:0", f"{tiny_dataset}:3"]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page)
    assert len(sources) == 2 + 3 + 9  # samples, file rows, 8 steps + sweep
    for src in sources:
        info = sf.info(tmp_path / "rep" / src)
        assert info.frames > 0 and info.subtype == "PCM_16"


def test_explorer_sliders_move_the_latent(trained_tiny, tiny_dataset):
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.apps.explorer import LatentExplorer
    from vae_tfp.apps.generate import encode
    from vae_tfp.model.saving import load_model

    m = load_model(trained_tiny)
    means, _ = encode(m, open_dataset(tiny_dataset).load("train"))
    labels = [c["label"] for c in open_dataset(tiny_dataset).split_clips("train")]
    ex = LatentExplorer(m, means, labels, label_pairs=[("high", "low")], k=2, inversion=Inversion(n_iter=2),
                        conditions={"label": labels})
    assert [n for n, _ in ex.directions] == ["PC1", "PC2", "high−low"]
    np.testing.assert_allclose(ex.z([0, 0, 0]), means.mean(0), atol=1e-5)
    assert not np.allclose(ex.z([1, 0, 0]), ex.z([0, 0, 0]))
    assert "<audio" in ex.render_html([0.5, 0, 1])
    assert list(ex.origins) == [ex.ALL, "label=high", "label=low"]
    box = ex.widget()
    controls = box.children[0].children[0].children
    controls[1].value = 1.0  # move a slider: the view re-renders
    assert "PC1 +1.0" in box.children[0].children[1].value
    controls[0].value = "label=low"  # start from the low tones' codes
    low = np.array([label == "low" for label in labels])
    np.testing.assert_allclose(ex.z([0, 0, 0]), means[low].mean(0), atol=1e-5)
    assert "label=low, PC1 +1.0" in box.children[0].children[1].value


def test_generate_streams_in_batches_with_the_same_files(trained_tiny, tmp_path):
    from vae_tfp.apps.operations import op_generate

    one = op_generate(trained_tiny, tmp_path / "one", n=5, inversion=Inversion(n_iter=2, phase_init="pghi"), progress=False)
    batched = op_generate(trained_tiny, tmp_path / "batched", n=5, inversion=Inversion(n_iter=2, phase_init="pghi"), batch_size=2,
                          progress=False)
    assert [i["name"] for i in batched["items"]] == [f"sample_{k:02d}" for k in range(5)]
    for a, b in zip(one["items"], batched["items"]):
        assert a["z"] == b["z"]
        assert (tmp_path / "one" / a["png"]).read_bytes() == (tmp_path / "batched" / b["png"]).read_bytes()


def test_generate_stops_at_a_full_disk_with_what_it_wrote_listed(trained_tiny, tmp_path, monkeypatch):
    import vae_tfp.apps.operations as operations
    from vae_tfp.errors import VaeTfpError

    free = iter([10**9, 10**9, 10])  # room for two batches, then a full disk
    monkeypatch.setattr(operations, "free_bytes", lambda _: next(free))
    with pytest.raises(VaeTfpError, match="disk full .* 4 of 7 samples written and listed in results.json"):
        operations.op_generate(trained_tiny, tmp_path / "g", n=7, inversion=Inversion(n_iter=2), batch_size=2, progress=False)
    listed = json.loads((tmp_path / "g" / "results.json").read_text())["items"]
    assert len(listed) == 4 and sorted(p.name for p in (tmp_path / "g").glob("*.wav")) == [i["wav"] for i in listed]
