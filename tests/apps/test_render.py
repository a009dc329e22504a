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
