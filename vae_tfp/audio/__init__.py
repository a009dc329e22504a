"""Audio in and out: reading and writing files (:mod:`.io`), audio ↔ spectrogram images
(:mod:`.spectrogram`), Griffin-Lim's starting phase (:mod:`.phase`), and what the representation
and its inversion cost (:mod:`.metrics`)."""
