"""The tables stage: each family's paper comparison tables, our metrics beside the
published numbers (quoted with their source in the family's ``tables.py``); ours are
labelled with the run's size (CPU-sized defaults are far smaller and shorter-trained)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.families import FAMILIES, family

log = logging.getLogger(__name__)


def write_tables(cfg: DictConfig) -> Path:
    """reports/tables/: one Markdown and one JSON file per paper comparison."""
    metrics_dir = Path(cfg.paths.reports) / "metrics"
    size = "CPU-sized" if cfg.trainer.accelerator == "cpu" else f"{cfg.trainer.accelerator}-sized"
    out_dir = Path(cfg.paths.reports) / "tables"
    with atomic_dir(out_dir) as tmp:
        for name in FAMILIES:
            for table in family(name).tables():
                text, rows = table.make(metrics_dir, size)
                (tmp / f"{table.name}.md").write_text(table.header + text)
                write_json_atomic(tmp / f"{table.name}.json", rows)
    log.info("wrote %s", out_dir)
    return out_dir
