"""Registers tunelab's OmegaConf resolvers (``vocab_size``, ``len``) in any process whose
Hydra scans plugins -- DVC's, when ``dvc exp run -S`` composes params.yaml from conf/
(``hydra.plugins_path = src`` in .dvc/config)."""

import tunelab.config  # noqa: F401 -- importing it registers the resolvers
