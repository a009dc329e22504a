"""Starting phases for inverting magnitude spectrograms: PGHI, random, zeros.

Griffin-Lim (:mod:`vae_tfp.audio.spectrogram`) refines a phase; where it starts sets how far it gets in
a given number of iterations. **Phase Gradient Heap Integration** (PGHI; Průša, Balazs &
Søndergaard, "A noniterative method for reconstruction of phase from STFT magnitude", IEEE/ACM
TASLP 25(5), 2017) estimates the phase from the magnitude alone. For a Gaussian window
``exp(-pi t^2 / gamma)`` the STFT's log-magnitude ``s`` and phase ``phi`` satisfy (with frame
centres as time origin, hop ``a``, ``M`` FFT bins, ``m`` the bin, ``n`` the frame):

* along time, the phase advances per hop by ``(a M / gamma) ds/dm + 2 pi a m / M``;
* along frequency, it advances per bin by ``-(gamma / (a M)) ds/dn``;

``gamma = 0.25645 L^2`` fits a Hann window of ``L`` samples (the paper's Table I). The gradients
are centred differences of ``s``. The phase is integrated from the loudest coefficient outwards
over a max-heap of magnitudes (trapezoidal rule between neighbours), restarting at the loudest
coefficient not yet reached; coefficients more than ``tol_db`` below the loudest get a random
phase. TiFGAN (Marafioti et al., ICML 2019) used exactly this on generated spectrograms with a
Hann window at redundancy 4 (``n_fft = 4 hop``).

Written here from the paper because the PyPI implementations are unmaintained (one is GPL). The
heap loop is sequential by nature; it runs under numba (pinned in requirements.txt) because plain
Python takes 0.54 s per 512 x 512 image against 0.05 s (``benchmarks/inversion.py`` measures both).

Phases are returned in librosa's convention (each frame's FFT has its time origin at the frame's
first sample, centred frames), which ``tf.signal.stft`` on the centred padding of
:mod:`vae_tfp.audio.spectrogram` shares: the frame-centre phase times ``(-1)^m``.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..config import SpectrogramConfig
from ..errors import ConfigError

PHASE_INITS = ("pghi", "random", "zeros")
DEFAULT_PHASE_INIT = "pghi"
DEFAULT_TOL_DB = 50.0
HANN_GAMMA = 0.25645  # gamma / L^2 of the Gaussian closest to a Hann window of L samples (Průša et al., Table I)


def initial_phase(magnitude: np.ndarray, config: SpectrogramConfig, init: str = DEFAULT_PHASE_INIT, *,
                  seed: int = 0, tol_db: float = DEFAULT_TOL_DB) -> np.ndarray:
    """Starting phases for Griffin-Lim.

    Args:
        magnitude: float [..., n_fft // 2 + 1, n_frames] linear STFT magnitudes (with Nyquist).
        config: The STFT settings (window length ``n_fft``, ``hop_length``).
        init: ``"pghi"`` (phase-gradient heap integration), ``"random"`` (uniform; the same draw as
            librosa's ``griffinlim(init="random", random_state=seed)``) or ``"zeros"``.
        seed: Seeds the random phases (of ``"random"``, and of PGHI's quiet coefficients).
        tol_db: PGHI only: coefficients this far below the loudest of their clip get a random phase.

    Returns:
        float64 phases in radians, the shape of ``magnitude``.
    """
    if init not in PHASE_INITS:
        raise ConfigError(f"phase_init={init!r} must be one of {', '.join(PHASE_INITS)}")
    magnitude = np.asarray(magnitude, np.float64)
    if init == "zeros":
        return np.zeros(magnitude.shape)
    rng = np.random.RandomState(seed)  # librosa's generator for an integer random_state
    if init == "random":
        return 2 * np.pi * rng.random(size=magnitude.shape)
    flat = magnitude.reshape((-1,) + magnitude.shape[-2:])
    out = np.stack([pghi(m, config, tol_db=tol_db, rng=rng) for m in flat])
    return out.reshape(magnitude.shape)


def pghi(magnitude: np.ndarray, config: SpectrogramConfig, *, tol_db: float = DEFAULT_TOL_DB,
         rng: np.random.RandomState | None = None, use_numba: bool = True) -> np.ndarray:
    """Phase-gradient heap integration for one clip (see the module docstring).

    Args:
        magnitude: float [n_fft // 2 + 1, n_frames] linear magnitudes.
        config: The STFT settings.
        tol_db: Coefficients more than this below the loudest get a random phase.
        rng: Source of those random phases (default: seed 0).
        use_numba: Run the heap loop compiled (False: the same loop in plain Python).

    Returns:
        float64 [n_fft // 2 + 1, n_frames] phases in librosa's convention.
    """
    magnitude = np.asarray(magnitude, np.float64)
    n_bins, n_frames = magnitude.shape
    if n_bins != config.n_fft // 2 + 1:
        raise ConfigError(f"magnitude has {n_bins} bins; n_fft={config.n_fft} needs {config.n_fft // 2 + 1}")
    rng = rng or np.random.RandomState(0)
    phase = 2 * np.pi * rng.random(size=magnitude.shape)
    peak = magnitude.max(initial=0.0)
    if not np.isfinite(peak) or peak <= 0:
        return phase
    floor = np.log(peak) - tol_db / 20.0 * np.log(10.0)
    logs = np.log(np.maximum(magnitude, np.exp(floor - 1.0)))
    time_scale, bin_advance, freq_scale = _phase_gradient_constants(config)
    bins = np.arange(n_bins, dtype=np.float64)[:, None]
    dm = np.gradient(logs, axis=0) if n_bins > 1 else np.zeros_like(logs)
    dn = np.gradient(logs, axis=1) if n_frames > 1 else np.zeros_like(logs)
    time_step = time_scale * dm + bin_advance * bins
    freq_step = freq_scale * dn
    big = logs > floor
    order = np.argsort(-logs, axis=None, kind="stable")
    integrate = _heap_integrate_numba() if use_numba else _heap_integrate
    integrate(logs, time_step, freq_step, big, order, phase)
    return phase + np.pi * bins  # frame-centre origin → frame-start origin: times (-1)^m


def _phase_gradient_constants(config: SpectrogramConfig) -> tuple[float, float, float]:
    """The module docstring's ``a M / gamma``, ``2 pi a / M`` and ``-gamma / (a M)`` for ``config``."""
    a, m_fft = config.hop_length, config.n_fft
    gamma = HANN_GAMMA * m_fft**2
    return a * m_fft / gamma, 2 * np.pi * a / m_fft, -gamma / (a * m_fft)


def time_integrated_phase_tf(magnitude, config: SpectrogramConfig, *, tol_db: float = DEFAULT_TOL_DB):
    """PGHI's phase along time alone, in TensorFlow: each bin's phase advanced frame by frame by
    the time-direction phase gradient (trapezoidal rule), from 0 at the first frame.

    PGHI's heap, which also integrates across frequency and so keeps onsets coherent, is sequential
    and runs in NumPy; this runs inside a train step, under XLA and on a GPU. A start for a few
    Griffin-Lim iterations, not a replacement for PGHI: after 4 iterations it gives the embedded
    notes' held-out clips a spectral convergence of 0.044 (PGHI and 32: 0.009), and still tells
    them from the demo model's blurred reconstructions (0.195; docs/experiments.md, "Stage 2").
    Without gradient.

    Args:
        magnitude: float [batch, n_frames, n_fft // 2 + 1] linear magnitudes (tf.signal's layout).
        config: The STFT settings.
        tol_db: Magnitudes more than this below each clip's loudest count as that level.

    Returns:
        float32 [batch, n_frames, n_fft // 2 + 1] phases in librosa's convention.
    """
    import tensorflow as tf

    magnitude = tf.stop_gradient(tf.cast(magnitude, tf.float32))
    time_scale, bin_advance, _ = _phase_gradient_constants(config)
    peak = tf.reduce_max(magnitude, axis=[1, 2], keepdims=True)
    floor = tf.maximum(peak, 1e-30) * 10.0 ** (-tol_db / 20.0)
    logs = tf.math.log(tf.maximum(magnitude, floor))
    dm = tf.concat([logs[..., 1:2] - logs[..., :1], (logs[..., 2:] - logs[..., :-2]) / 2,  # as np.gradient
                    logs[..., -1:] - logs[..., -2:-1]], axis=2)
    bins = tf.range(tf.shape(logs)[2], dtype=tf.float32)
    step = time_scale * dm + bin_advance * bins
    advance = tf.cumsum(0.5 * (step[:, 1:] + step[:, :-1]), axis=1)
    phase = tf.concat([tf.zeros_like(step[:, :1]), advance], axis=1)
    return phase + np.float32(np.pi) * bins  # frame-centre origin -> frame-start origin, as pghi


def _heap_integrate(logs, time_step, freq_step, big, order, phase):
    """Integrates ``phase`` in place over the coefficients where ``big`` (Průša et al., Algorithm 1)."""
    n_bins, n_frames = logs.shape
    todo = big.copy()
    heap = [(0.0, 0, 0)]  # (-log magnitude, bin, frame); typed by its first element (numba), then emptied
    heap.pop()
    for flat in order:
        m0, n0 = flat // n_frames, flat % n_frames
        if not todo[m0, n0]:
            continue
        phase[m0, n0] = 0.0
        todo[m0, n0] = False
        heapq.heappush(heap, (-logs[m0, n0], m0, n0))
        while heap:
            _, m, n = heapq.heappop(heap)
            if n + 1 < n_frames and todo[m, n + 1]:
                phase[m, n + 1] = phase[m, n] + 0.5 * (time_step[m, n] + time_step[m, n + 1])
                todo[m, n + 1] = False
                heapq.heappush(heap, (-logs[m, n + 1], m, n + 1))
            if n > 0 and todo[m, n - 1]:
                phase[m, n - 1] = phase[m, n] - 0.5 * (time_step[m, n] + time_step[m, n - 1])
                todo[m, n - 1] = False
                heapq.heappush(heap, (-logs[m, n - 1], m, n - 1))
            if m + 1 < n_bins and todo[m + 1, n]:
                phase[m + 1, n] = phase[m, n] + 0.5 * (freq_step[m, n] + freq_step[m + 1, n])
                todo[m + 1, n] = False
                heapq.heappush(heap, (-logs[m + 1, n], m + 1, n))
            if m > 0 and todo[m - 1, n]:
                phase[m - 1, n] = phase[m, n] - 0.5 * (freq_step[m, n] + freq_step[m - 1, n])
                todo[m - 1, n] = False
                heapq.heappush(heap, (-logs[m - 1, n], m - 1, n))


_COMPILED = []


def _heap_integrate_numba():
    """:func:`_heap_integrate` compiled with numba (once per process, cached on disk)."""
    if not _COMPILED:
        import numba

        _COMPILED.append(numba.njit(cache=True)(_heap_integrate))
    return _COMPILED[0]
