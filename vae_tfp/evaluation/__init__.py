"""Judging a model: the collapse and prior-hole diagnostics and held-out evaluation
(:mod:`.diagnostics`), the dataset's classifier (:mod:`.classifier`), the generation table
(:mod:`.sample_metrics`), the pretrained judges (:mod:`.judges`) and the time-structure metrics
(:mod:`.time_structure`)."""
