"""The evaluate stage: each family's metrics of one trained model (likelihood of the test
split against an n-gram baseline, the samples against real pieces, the family's own
measures) -> reports/metrics/; and the cross-corpus matrix of the per-corpus models.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from tunelab.atomic import write_json_atomic
from tunelab.checkpoint import load_trained
from tunelab.encodings.registry import VAE_ENCODINGS
from tunelab.families import family
from tunelab.families.sequence import scored_split, test_nll
from tunelab.paths import metrics_file, processed_dir
from tunelab.tracking import log_evaluation

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict:
    """Write reports/metrics/{model}-{corpus}.json for `dvc metrics show` (and an evaluation
    run to W&B); what is measured is the model family's (``family(...).evaluate``)."""
    metrics = family(cfg.model.family).evaluate(cfg)
    write_json_atomic(metrics_file(cfg), metrics)
    log_evaluation(cfg, metrics)
    return metrics


def cross_corpus(cfg: DictConfig) -> dict:
    """The MusPy paper's cross-corpus matrix for one model: trained on corpus A (rows),
    test NLL per token and per note on corpus B (columns), same encoding
    -> reports/cross_corpus/{model}.json."""
    corpora = list(cfg.pipeline.corpora)
    name = cfg.model.encoding
    if name in VAE_ENCODINGS or cfg.model.get("corpora"):
        raise ValueError(f"model={cfg.model.name}: the cross-corpus matrix is for models trained per "
                         "corpus on token sequences")
    matrix: dict[str, dict[str, dict]] = {}
    for a in tqdm(corpora, desc="trained on", unit="corpus"):
        net, encoding, _ = load_trained(OmegaConf.merge(cfg, {"corpus": {"name": a}}))
        matrix[a] = {}
        for b in corpora:
            vocab = (processed_dir(cfg, name, corpus=b) / "vocab.json").read_text()
            if vocab != (processed_dir(cfg, name, corpus=a) / "vocab.json").read_text():
                raise ValueError(f"{name}: corpora {a} and {b} have different vocabularies; "
                                 "their NLLs do not compare")
            r = test_nll(net, scored_split(processed_dir(cfg, name, corpus=b), "test"), encoding,
                         cfg.model.seq_len, name=name)
            matrix[a][b] = {k: r[k] for k in ("nll_per_step", "bits_per_step", "bits_per_note", "steps")}
    out = {"model": cfg.model.name, "encoding": name, "corpora": corpora, "matrix": matrix}
    path = Path(cfg.paths.reports) / "cross_corpus" / f"{cfg.model.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    return out
