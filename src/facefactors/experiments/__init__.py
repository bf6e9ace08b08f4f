"""End-to-end experiments: evaluation of trained IPD-FER runs on synthetic test
identities (:mod:`.synth_eval`) and the ``facefactors demo`` pipeline (:mod:`.demo`)."""
