import json

import numpy as np

from vae_tfp.evaluation.classifier import label_heads, load_classifier


def test_label_heads_take_discrete_fields_with_two_or_more_classes():
    clips = [{"label": "a", "meta": {"pitch": p, "title": f"t{i}", "gain": 0.5, "same": 1}}
             for i, p in enumerate([60, 62, 60, 64] * 20)]
    clips[0]["label"] = "b"
    heads = label_heads(clips)
    assert heads["label"] == ["a", "b"] and heads["pitch"] == [60, 62, 64]
    assert "title" not in heads  # 80 distinct values: not a label
    assert "gain" not in heads and "same" not in heads  # a float; a constant
    assert label_heads([{"label": "x", "meta": {}}] * 3) == {}


def test_classifier_is_trained_once_saved_in_the_dataset_and_retrained_when_it_changes(tiny_dataset, tmp_path):
    import shutil

    from vae_tfp.data.dataset import open_dataset

    data = tmp_path / "ds"
    shutil.copytree(tiny_dataset, data)
    first = load_classifier(data, log=lambda _: None)
    record = json.loads((data / "classifier" / "config.json").read_text())
    assert first.heads["label"] == ["high", "low"] and record["accuracy"]["train"]["label"] > 0.9
    x = open_dataset(data).load("test")
    again = load_classifier(data, log=lambda _: None)
    assert again.record["seconds"] == record["seconds"]  # loaded, not retrained
    np.testing.assert_allclose(again.predict(x)["features"], first.predict(x)["features"], rtol=1e-5, atol=1e-6)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["note"] = "changed"
    (data / "manifest.json").write_text(json.dumps(manifest))
    messages = []
    load_classifier(data, log=messages.append)
    assert any("retraining" in m for m in messages)
