"""render.py: drawing never changes the user's matplotlib backend."""

import subprocess
import sys


def test_pyplot_and_the_projection_keep_the_users_backend(tmp_path):
    code = (
        "import matplotlib, numpy as np\n"
        "from vae_tfp.apps.render import figure, pyplot\n"
        "from vae_tfp.apps.latent import plot_projection\n"
        "pyplot()\n"
        "ax = plot_projection(np.random.default_rng(0).normal(size=(20, 2)), ['a', 'b'] * 10, ax=figure().subplots())\n"
        f"ax.figure.savefig({str(tmp_path / 'map.png')!r})\n"
        "print(matplotlib.get_backend())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip().lower() == "svg" and (tmp_path / "map.png").stat().st_size > 1000


def test_training_panel_shows_the_verdict_numbers_and_players(trained_tiny):
    import json

    from vae_tfp.apps.render import training_panel_html
    from vae_tfp.model.previews import read_previews

    history = json.loads((trained_tiny / "history.json").read_text())
    index = read_previews(trained_tiny)
    assert index is not None and index["entries"][0]["epoch"] == 1 and index["entries"][-1]["epoch"] == 3
    html = training_panel_html(history, index, epochs=3, running=False)
    assert "epoch 3 of 3</b> · done" in html
    assert history[-1]["verdict"]["text"].split(":")[0] in html
    assert html.count("<audio") == 2 * 3 + 2 * 2  # 2 clips: real, first, now; 2 draws: first, now
    assert html.count("data:audio/wav;base64,") == html.count("<audio")
    assert "samples_fd" not in html and "real floor" in html and "mean image" in html
    # before any preview: numbers and curves only; before any epoch: a waiting line
    assert "<audio" not in training_panel_html(history[:1], None, epochs=3)
    assert "waiting" in training_panel_html([], None)


def test_training_panel_updates_in_place_while_train_runs(tiny_dataset, tmp_path):
    from vae_tfp.apps.notebook import TrainingPanel
    from vae_tfp.config import model_preset
    from vae_tfp.model.training import train

    panel = TrainingPanel(tmp_path / "m")
    status, players = [], []
    panel.status.observe(lambda change: status.append(change["new"]), names="value")
    panel.players.observe(lambda change: players.append(change["new"]), names="value")
    train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=4, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False, callbacks=[panel], previews=3)
    headers = [v.split("</div>")[0] for v in status]
    for epoch in (1, 2, 3, 4):
        assert any(f"epoch {epoch} of 4</b> · training" in h for h in headers)
    assert "epoch 4 of 4</b> · done" in headers[-1]
    # the players change only with a new preview (epochs 1, 3, 4), so a clip playing is not cut off every epoch
    assert len(players) == 3 and players[-1].count("<audio") == 10 and players[0].count("<audio") == 6
