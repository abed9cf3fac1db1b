"""Hydra config: params.yaml snapshot drift, bad options and values, every config composes."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tunelab.cli import main
from tunelab.config import ConfigError, group_options, load_config, params_snapshot

REPO = Path(__file__).resolve().parents[1]


def test_params_yaml_matches_conf():
    committed = OmegaConf.to_container(OmegaConf.load(REPO / "params.yaml"))
    assert committed == params_snapshot(), "params.yaml drifted from conf/: run `tunelab params`"


@pytest.mark.parametrize("model, steps, every, patience", [
    ("music_vae_mel_2bar", 9600, 400, 3), ("music_vae_mel_16bar_flat", 3000, 200, 3),
    ("music_vae_mel_16bar_hier", 3000, 200, 3),
    ("melody_rnn_basic", 1200, 100, 6), ("melody_rnn_attention", 1200, 100, 6),
    ("jukebox_vqvae", 1200, 100, 3), ("music_transformer", 600, 100, 3)])
def test_dvc_stage_keeps_each_models_budget(monkeypatch, model, steps, every, patience):
    """Inside a DVC stage params.yaml supplies the trainer section; it used to hold the default
    model's resolved 600/100, so every stage trained 600 steps whatever its model asked for.
    MelodyRNN waits 6 validations before stopping early: with 3, attention-children stopped at
    step 500 on one CPU (test NLL above its gate) and reached its best at 1,100 on another."""
    monkeypatch.setenv("DVC_STAGE", "train@x")
    monkeypatch.setenv("DVC_ROOT", str(REPO))
    cfg = load_config([f"model={model}", "corpus=bach"])
    t = cfg.trainer
    assert (t.max_steps, t.val_check_interval, t.early_stopping.patience) == (steps, every, patience)


def test_dvc_exp_set_trainer_value_still_wins(monkeypatch, tmp_path):
    """`dvc exp run -S trainer.max_steps=50` writes a literal into params.yaml: every stage uses it."""
    params = OmegaConf.load(REPO / "params.yaml")
    params.trainer.max_steps = 50
    OmegaConf.save(params, tmp_path / "params.yaml")
    monkeypatch.setenv("DVC_STAGE", "train@x")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert load_config(["model=music_vae_mel_2bar", "corpus=bach"]).trainer.max_steps == 50


@pytest.mark.parametrize("group", ["corpus", "model", "trainer", "logger", "experiment"])
def test_every_option_composes(group):
    for option in group_options(group):
        extra = ["corpus.path=/tmp"] if option == "midi_dir" else []
        load_config([f"{group}={option}", *extra])


@pytest.mark.parametrize("overrides, message", [
    (["corpus=nope"], "corpus=nope is not an option; choose one of: bach, children, jazz, jsb, lakh, "
                     "maestro, midi_dir"),
    (["corpus=lakh", "corpus.variant=clean"], "corpus.variant=clean: choose one of full, matched"),
    (["model=nope"], "model=nope is not an option; choose one of: jukebox, jukebox_prior, "
                    "jukebox_upsampler, jukebox_vqvae, melody_rnn_attention, melody_rnn_basic"),
    (["trainer.max_steps=-5"], "trainer.max_steps=-5: must be a positive integer"),
    (["trainer.max_stepz=3"], "trainer.max_stepz is not a config key"),
    (["sample.temperature=0"], "sample.temperature=0: must be > 0"),
    (["split.test=1.5"], "split.test=1.5: must be a fraction"),
    (["corpus=midi_dir"], "corpus.path=(unset): must be an existing folder"),
    (["corpus=midi_dir", "corpus.path=/no/such/dir"], "corpus.path=/no/such/dir: must be an existing"),
    # values Hydra or torch used to refuse only after the banners, with a traceback
    (["model.net.dropout=2"], "model.net.dropout=2: must be a probability in [0, 1)"),
    (["model.net.hidden_size=-3"], "model.net.hidden_size=-3: must be a positive integer"),
    (["model=music_transformer", "model.net.num_heads=0"], "model.net.num_heads=0: must be a positive"),
    (["model.optimizer.lr=fast"], "model.optimizer.lr=fast: must be a positive number"),
    (["model.optimizer.lr=-0.001"], "model.optimizer.lr=-0.001: must be a positive number"),
    (["model.clip_norm=0"], "model.clip_norm=0: must be a positive number or null"),
    (["seed=abc"], "seed=abc: must be a non-negative integer"),
    (["model=jukebox_prior", "model.net.d_model=0"], "model.net.d_model=0: must be a positive integer"),
    (["preprocess.workers=0"], "preprocess.workers=0: must be auto or a positive integer"),
    (["preprocess.workers=many"], "preprocess.workers=many: must be auto or a positive integer"),
    (["preprocess.shard_size=0"], "preprocess.shard_size=0: must be a positive integer"),
    (["preprocess.engine=ray"], "preprocess.engine=ray: choose local or dask"),
    (["preprocess.scheduler_address=tcp://h:8786"], "preprocess.scheduler_address=tcp://h:8786: is only used "
                                                     "with preprocess.engine=dask"),
])
def test_bad_config_is_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_reports_config_errors_and_exits_nonzero(capsys):
    assert main(["extract", "corpus=nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunelab extract: config error: corpus=nope") and "\n" not in err


def test_cli_help_explains_itself(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "download" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "example" in capsys.readouterr().out


def test_cfg_prints_composed_config(capsys):
    assert main(["train", "corpus=jazz", "--cfg"]) == 0
    assert "kind: jazz" in capsys.readouterr().out


def test_jukebox_seconds_must_be_positive():
    with pytest.raises(ConfigError, match=r"seconds=-1: must be a positive number of seconds"):
        load_config(["model=jukebox", "seconds=-1"])


def _model_parents(name: str) -> set[str]:
    """conf/model files ``name`` inherits through its Hydra defaults list, transitively."""
    spec = OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")
    parents = {d for d in spec.get("defaults", []) if isinstance(d, str) and d != "_self_"}
    return parents.union(*(_model_parents(p) for p in parents))


@pytest.fixture(scope="module")
def dvc_stages() -> list[tuple[str, str, set[str]]]:
    """Each stage of dvc.yaml as (address, cmd, dependency paths); DVC builds its index once."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return [(s.addressing, s.cmd or "", {Path(d.def_path).as_posix() for d in s.deps})
                for s in repo.index.stages]


def test_every_stage_depends_on_the_model_configs_it_inherits(dvc_stages):
    """A stage that trains conf/model/X.yaml must also depend on the files X inherits: editing
    melody_rnn_basic.yaml (the learning-rate policy of every MelodyRNN variant) once left the
    mono, lookback and attention cells of `dvc repro` up to date."""
    checked = 0
    for address, _, deps in dvc_stages:
        for dep in sorted(d for d in deps if d.startswith("conf/model/")):
            for parent in _model_parents(Path(dep).stem):
                checked += 1
                assert f"conf/model/{parent}.yaml" in deps, (
                    f"dvc.yaml stage {address} trains {dep} but does not depend on "
                    f"conf/model/{parent}.yaml, which it inherits")
    assert checked >= 5  # mono, lookback, attention x 3 corpora; local, baseline on JSB


TRAINING_CODE = ("src/tunelab/pipeline/train.py", "src/tunelab/convergence.py", "src/tunelab/resume.py",
                 "src/tunelab/families/base.py")


def test_every_train_stage_depends_on_the_training_loop(dvc_stages):
    """What a train stage writes depends on the loop, early stopping and best-weights keeping
    (convergence.py), and resuming: editing any of them must re-run every model. convergence.py
    was once missing, so a new patience rule left the locked models up to date."""
    trains = [(a, deps) for a, cmd, deps in dvc_stages if cmd.startswith("tunelab train ")]
    for address, deps in trains:
        missing = [f for f in TRAINING_CODE if f not in deps]
        assert not missing, f"dvc.yaml stage {address} does not depend on {missing}"
    assert len(trains) >= 30


@pytest.mark.parametrize("model, batch", [
    ("music_vae_mel_16bar_flat", 512), ("music_vae_mel_16bar_hier", 512), ("music_vae_trio_16bar", 256)])
def test_paper_16bar_configs_keep_magentas_settings(model, batch):
    """The CPU defaults train faster (lr 1e-2, transposed windows); the published configs
    (Magenta's configs.py flat-/hierdec-mel_16bar, hierdec-trio_16bar) must not inherit that."""
    cfg = load_config([f"experiment=paper/{model}", "corpus=bach"])
    m = cfg.model
    assert (m.optimizer.lr, m.vae.lr_decay, m.vae.min_lr, m.batch_size) == (1e-3, 0.9999, 1e-5, batch)
    assert (m.vae.free_bits, m.vae.max_beta, m.augment) == (256, 0.2, None)
    assert (m.net.z_size, m.net.encoder_size, m.net.encoder_layers) == (512, 2048, 2)
