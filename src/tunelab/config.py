"""Compose and validate the Hydra config; build the params.yaml snapshot DVC reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tunelab.errors import ConfigError, positive_int, require
from tunelab.families import FAMILIES, family

CONF_ENV = "TUNELAB_CONF"
GROUPS = ("corpus", "model", "trainer", "logger", "experiment", "hparams_search")


def _vocab_size(encoding: str, styles: Any = None) -> int:
    from tunelab.encodings.registry import build_encoding

    if styles is None:
        return len(build_encoding(encoding).vocab)
    return len(build_encoding(encoding, styles=list(styles)).vocab)


# `num_classes: ${vocab_size:${model.encoding}}` sizes a token model to its encoding.
OmegaConf.register_new_resolver("vocab_size", _vocab_size, replace=True)
OmegaConf.register_new_resolver("len", lambda xs: len(xs) if xs is not None else 0, replace=True)


def conf_dir() -> Path:
    """``$TUNELAB_CONF``, else ./conf, else the conf/ of the source checkout."""
    for cand in (os.environ.get(CONF_ENV), "conf", Path(__file__).resolve().parents[2] / "conf"):
        if cand and (Path(cand) / "config.yaml").is_file():
            return Path(cand).resolve()
    raise ConfigError(f"no conf/config.yaml here; run from the tunelab checkout or set {CONF_ENV}")


def group_options(group: str) -> list[str]:
    root = conf_dir() / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def _explain(overrides: list[str], err: Exception) -> str:
    text = str(err)
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key in GROUPS and f"{key}/{value}" in text:
            return f"{key}={value} is not an option; choose one of: {', '.join(group_options(key))}"
        if f"'{key}'" in text or f"{key}" in text.split("\n")[0]:
            if "Could not override" in text or "Key" in text:
                return f"{key} is not a config key (see `tunelab <verb> --cfg`); prefix + to add one"
    return text.strip().splitlines()[0]


def load_config(overrides: list[str] | None = None, use_params: bool = True) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides, then validate it. Run by DVC, the
    project's params.yaml (which ``dvc exp run -S`` rewrites) applies too: :func:`apply_params`.

    Raises:
        ConfigError: unknown group option or key, unparsable override, or a bad value.
    """
    overrides = list(overrides or [])
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        if use_params and (params := dvc_params()) is not None:
            cfg = apply_params(cfg, params, overrides)
    except (MissingConfigException, ConfigCompositionException, OverrideParseException,
            OmegaConfBaseException) as e:
        raise ConfigError(_explain(overrides, e)) from None
    validate(cfg)
    return cfg


PREPROCESS_ENGINES = ("local", "dask")


def _validate_preprocess(cfg: DictConfig) -> None:
    p = cfg.get("preprocess")
    require(p is not None, "preprocess", p, "the section is missing (see conf/config.yaml)")
    w = p.get("workers")
    require(w == "auto" or (isinstance(w, int) and not isinstance(w, bool) and w > 0),
            "preprocess.workers", w, "must be auto or a positive integer")
    positive_int(cfg, "preprocess.shard_size")
    engine = p.get("engine")
    require(engine in PREPROCESS_ENGINES, "preprocess.engine", engine,
            f"choose {' or '.join(PREPROCESS_ENGINES)}")
    address = p.get("scheduler_address")
    require(address is None or (isinstance(address, str) and address.strip() != ""),
            "preprocess.scheduler_address", address, "must be null (start a local cluster) or tcp://host:port")
    require(address is None or engine == "dask", "preprocess.scheduler_address", address,
            "is only used with preprocess.engine=dask")


def validate(cfg: DictConfig) -> None:
    """Check the values a user is most likely to get wrong; raise ConfigError on the first."""
    from tunelab.corpora import KINDS
    from tunelab.encodings.registry import ENCODINGS

    require(cfg.corpus.kind in KINDS, "corpus.kind", cfg.corpus.kind, f"choose one of {', '.join(KINDS)}")
    for key in ("corpus.steps_per_quarter", "trainer.max_steps", "trainer.val_check_interval",
                "sample.num_outputs", "sample.num_steps", "sample.beam_size", "sample.branch_factor",
                "sample.steps_per_iteration",
                "extract.min_bars", "extract.min_unique_pitches"):
        positive_int(cfg, key)
    seed = cfg.get("seed")
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", seed,
            "must be a non-negative integer")
    det = cfg.trainer.get("deterministic", True)
    require(det in (True, False, "warn"), "trainer.deterministic", det, "choose true, false or warn")
    require(cfg.sample.temperature > 0, "sample.temperature", cfg.sample.temperature, "must be > 0")
    positive_int(cfg, "sample.num_tokens")
    k, p = cfg.sample.top_k, cfg.sample.top_p
    require(k is None or (isinstance(k, int) and k > 0), "sample.top_k", k,
            "must be a positive integer or null")
    require(p is None or 0 < p <= 1, "sample.top_p", p, "must be in (0, 1] or null")
    bars = cfg.sample.num_bars
    require(bars is None or (isinstance(bars, int) and bars > 0), "sample.num_bars", bars,
            "must be a positive integer or null")
    _validate_preprocess(cfg)
    require(cfg.extract.gap_bars > 0, "extract.gap_bars", cfg.extract.gap_bars, "must be > 0")
    key = cfg.squash.transpose_to_key
    require(key is None or (isinstance(key, int) and 0 <= key <= 11), "squash.transpose_to_key", key,
            "must be a major key 0..11 (0 = C) or null")
    for part in ("valid", "test"):
        v = cfg.split[part]
        require(0 <= v < 1, f"split.{part}", v, "must be a fraction in [0, 1)")
    require(cfg.split.valid + cfg.split.test < 1, "split", dict(cfg.split), "valid + test must be < 1")
    require(isinstance(cfg.seconds, int | float) and cfg.seconds > 0, "seconds", cfg.seconds,
            "must be a positive number of seconds")
    for enc in cfg.pipeline.encodings:
        require(enc in ENCODINGS, "pipeline.encodings", enc, f"choose from {', '.join(ENCODINGS)}")
    require(cfg.model.get("family") in FAMILIES, "model.family", cfg.model.get("family"),
            f"choose one of {', '.join(FAMILIES)}")
    family(cfg.model.family).validate(cfg)  # the model section, by its family's rules
    styles = cfg.get("styles")
    require(isinstance(styles, ListConfig | list) and len(styles) > 0
             and all(isinstance(s, str) for s in styles) and len(set(styles)) == len(styles),
            "styles", styles, "must be a non-empty list of unique style names, e.g. [bach, children, jazz]")
    require(cfg.logger.kind in ("wandb", "csv"), "logger.kind", cfg.logger.kind, "choose wandb or csv")
    if cfg.corpus.kind == "lakh":
        from tunelab.corpora.lakh import VARIANTS

        variant = cfg.corpus.get("variant")
        require(variant in VARIANTS, "corpus.variant", variant, f"choose one of {', '.join(VARIANTS)}")
    if cfg.corpus.kind == "midi_dir":
        path = OmegaConf.select(cfg, "corpus.path", throw_on_missing=False, default=None)
        require(path is not None and Path(str(path)).expanduser().is_dir(), "corpus.path",
                "(unset)" if path is None else path,
                "must be an existing folder of MIDI files (corpus=midi_dir corpus.path=/dir)")


def corpus_settings(cfg: DictConfig) -> Any:
    """The corpus section plus resolved extras (mirror folder) for corpora modules."""
    from types import SimpleNamespace

    from tunelab.corpora.download import mirror_root

    c = OmegaConf.to_container(cfg.corpus, resolve=True)
    if c.get("path") == "???":
        c["path"] = None
    return SimpleNamespace(**c, mirror_path=mirror_root(c.get("mirror")))


# Stages select these groups themselves (``model=x corpus=y``): a value elsewhere that
# interpolates them is per-stage, so params.yaml keeps the interpolation, not the default's value.
STAGE_GROUPS = ("model", "corpus")


def _keeps_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value and any(
        f"{g}." in value for g in STAGE_GROUPS)


def _per_stage(resolved: Any, raw: Any, top: bool = True) -> Any:
    """``resolved`` with each leaf whose ``raw`` form interpolates a stage group put back as
    that interpolation (the selected groups themselves stay resolved)."""
    if isinstance(resolved, dict) and isinstance(raw, dict):
        return {k: v if top and k in STAGE_GROUPS else _per_stage(v, raw.get(k), top=False)
                for k, v in resolved.items()}
    if isinstance(resolved, list) and isinstance(raw, list) and len(raw) == len(resolved):
        return [_per_stage(v, r, top=False) for v, r in zip(resolved, raw, strict=True)]
    return raw if _keeps_interpolation(raw) else resolved


def params_snapshot(overrides: list[str] | None = None) -> dict:
    """params.yaml: the resolved composition of conf/config.yaml -- what DVC's Hydra
    integration writes for ``dvc exp run -S ...`` (see :func:`dvc_params`) -- except values
    that follow the stage's own model or corpus (``trainer.max_steps: ${oc.select:model.max_steps,600}``):
    resolved with the default model they would pin every stage to its budget."""
    cfg = load_config(overrides, use_params=False)
    return _per_stage(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_container(cfg, resolve=False))


def write_params(path: Path = Path("params.yaml")) -> None:
    from tunelab.atomic import write_text_atomic

    write_text_atomic(path, OmegaConf.to_yaml(OmegaConf.create(params_snapshot())))  # the format DVC writes


def dvc_params() -> Path | None:
    """params.yaml of the DVC project, when this process is a DVC stage (DVC sets DVC_STAGE
    and DVC_ROOT), else None."""
    if not os.environ.get("DVC_STAGE"):
        return None
    path = Path(os.environ.get("DVC_ROOT", ".")) / "params.yaml"
    return path if path.is_file() else None


def apply_params(cfg: DictConfig, params: Path, overrides: list[str]) -> DictConfig:
    """Inside a DVC stage params.yaml is the source of truth, so ``dvc exp run -S key=value``
    reaches every stage that depends on that key: each top-level section comes from it,
    except the groups the stage selects itself (``model=x corpus=y`` of a matrix cell); the
    stage's own value overrides (``encoding=lookback``) are applied again on top."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    selected = {o.key_or_group.split(".")[0] for o in parsed}
    stored = OmegaConf.load(params)
    for key in stored:
        if key not in selected:
            cfg[key] = stored[key]
    for o in parsed:
        if o.key_or_group.split(".")[0] not in GROUPS and not o.is_delete():
            OmegaConf.update(cfg, o.key_or_group, o.value(), force_add=True)
    return cfg
