"""What users run: encoding, decoding and sampling (:mod:`.generate`), latent tools (:mod:`.latent`)
and the slider explorer (:mod:`.explorer`), the CLI's operations (:mod:`.operations`), pictures and
players (:mod:`.render`, :mod:`.notebook`), the HTML report (:mod:`.report`), ``make demo``
(:mod:`.demo`) and the command line (:mod:`.cli`)."""
