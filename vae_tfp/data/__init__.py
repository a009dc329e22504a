"""Datasets: preparing a folder of audio into spectrogram shards and opening them
(:mod:`.dataset`), and the embedded audio rendered from wheels (:mod:`.demo_data`)."""
