"""The bench as a pipeline of stages, one file each (:func:`audiolatent.bench.runner.run_bench` runs them):

1. :mod:`.inputs` — presets and the data: corpora, splits, the scored files.
2. :mod:`.encode` — latents of each file, kept in an on-disk cache keyed by the tokenizer's
   weights and the file, shared by the stages of a run and by later runs; sharded over
   ``torchrun`` ranks.
3. :mod:`.score` — distortion (and the latents rate is measured on): decode, align, score each
   file, gather the per-file records in file order, then the means. Streaming
   (:mod:`audiolatent.bench.streaming`) and modelability (:mod:`audiolatent.bench.modelability`)
   take the latents from here and from the encode stage.
4. :mod:`.store` — ``results.json`` and the report after every tokenizer, and the reuse keys
   that let a later run skip a finished tokenizer.
"""
