"""The pipeline's stages, one module each (extract, tokenize, train, sample, evaluate, tables,
figures, report), each a `tunelab <verb>` and a DVC stage. A stage hands model-specific
work to the model's family (:func:`tunelab.families.family`) and never branches on it."""
