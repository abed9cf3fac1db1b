"""`tunelab <verb> [hydra overrides]`: one thin function per DVC stage."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

VERBS: dict[str, tuple[str, str]] = {
    "params": ("write params.yaml, the snapshot of conf/ that DVC reads",
               "tunelab params            # rewrite params.yaml\n"
               "tunelab params --check    # exit 1 if params.yaml and conf/ drifted apart"),
    "download": ("fetch a corpus into data/raw/{corpus}/ with a sha256 manifest",
                 "tunelab download corpus=jazz corpus.mirror=../shared/data"),
    "extract": ("parse a corpus, extract melodies -> data/interim/{corpus}/",
                "tunelab extract corpus=midi_dir corpus.path=/some/dir"),
    "render_audio": ("render a corpus to audio (or read a WAV/FLAC folder) -> data/audio/{corpus}/",
                     "tunelab render_audio corpus=bach\n"
                     "  tunelab render_audio corpus=midi_dir corpus.path=x audio.source_dir=/my/wavs"),
    "tokenize": ("encode a corpus -> data/processed/{corpus}/{encoding}/",
                 "tunelab tokenize corpus=bach encoding=lookback"),
    "train": ("train a model on a corpus -> models/{model}-{corpus}/",
              "tunelab train model=melody_rnn_basic corpus=children trainer.max_steps=200\n"
              "  tunelab train -m model=melody_rnn_basic,melody_rnn_attention corpus=bach,jazz   # a sweep\n"
              "  tunelab train -m hparams_search=melody_rnn_optuna corpus=bach   # an Optuna search"),
    "sample": ("generate MIDI from a trained model -> samples/{model}-{corpus}/",
               "tunelab sample corpus=bach sample.num_outputs=8 sample.temperature=0.9"),
    "evaluate": ("test NLL and pitch statistics -> reports/metrics/{model}-{corpus}.json",
                 "tunelab evaluate corpus=bach"),
    "check": ("quality gates on reports/metrics/ (a line per unmet gate, exit 1) -> reports/quality.json",
              "tunelab check"),
    "tables": ("the papers' comparison tables, published beside ours -> reports/tables/",
               "tunelab tables"),
    "cross_corpus": ("test NLL of each melody model on every corpus's test split -> reports/metrics/",
                     "tunelab cross_corpus model=melody_rnn_basic"),
    "figures": ("the figures (PNG + SVG) from metrics, training logs and samples -> reports/figures/",
                "tunelab figures"),
    "report": ("the offline HTML report: tables, figures, audio of each sample -> reports/index.html",
               "tunelab report report.samples_per_run=4"),
    "compare": ("side-by-side configs and metrics of chosen runs -> reports/compare.{md,csv}",
                "tunelab compare --runs melody_rnn_basic-bach melody_rnn_lookback-bach\n"
                "  tunelab compare --wandb entity/tunelab   # online runs (needs `wandb login`)"),
    "experiment": ("train, sample and evaluate the run params.yaml selects -> experiment/ (DVC experiments)",
                   "dvc exp run experiment -S model=music_transformer -S corpus=jazz\n"
                   "  tunelab experiment model=melody_rnn_lookback corpus=children   # the same, by hand"),
    "accompany": ("write an accompaniment for a MIDI melody (Music Transformer encoder-decoder)",
                  "tunelab accompany tune.mid corpus=bach   # -> tune_accompanied.mid (S + A T B)"),
    "vae": ("MusicVAE: sample the prior, interpolate two MIDI files, or move one along an attribute",
            "tunelab vae sample corpus=bach\n"
            "  tunelab vae interpolate a.mid b.mid --steps 8 corpus=bach   # -> a_to_b.mid + .png\n"
            "  tunelab vae attribute input.mid --name note_density --amount 1.5 corpus=jazz"),
}
ALIASES = {"generate": "sample"}
VAE_ACTIONS = ("sample", "interpolate", "attribute")


def _run(verb: str, cfg: DictConfig, args: argparse.Namespace) -> object:
    from tunelab.pipeline import extract, tokenize

    if verb == "accompany":
        from tunelab.families.music_transformer.accompany import accompany

        path = accompany(cfg, args.melody, args.out, args.track)
        print(path)
        return path
    if verb == "vae":
        return _vae(cfg, args)
    if verb == "check":
        from tunelab.pipeline.quality import check

        return check(cfg)
    if verb == "tables":
        from tunelab.pipeline.tables import write_tables

        return write_tables(cfg)
    if verb == "experiment":
        from tunelab.experiments.experiment import run_experiment

        return run_experiment(cfg)
    if verb == "render_audio":
        from tunelab.families.jukebox.audio_corpus import render_corpus_audio

        return render_corpus_audio(cfg)
    if verb == "cross_corpus":
        from tunelab.pipeline.evaluate import cross_corpus

        return cross_corpus(cfg)
    if verb == "figures":
        from tunelab.pipeline.figures import make_figures

        return make_figures(cfg)
    if verb == "report":
        from tunelab.pipeline.report import build_report

        print(build_report(cfg))
        return None
    if verb == "compare":
        from tunelab.experiments.compare import compare

        return compare(cfg, args.runs, args.wandb, args.keys)
    if verb == "download":
        return extract.download(cfg)
    if verb == "extract":
        return extract.extract(cfg)
    if verb == "tokenize":
        return tokenize.tokenize(cfg, cfg.encoding or cfg.model.encoding)
    if verb == "train":
        from tunelab.pipeline.train import train

        return train(cfg)
    if verb == "sample":
        from tunelab.pipeline.sample import sample

        return sample(cfg)
    from tunelab.pipeline.evaluate import evaluate

    return evaluate(cfg)


def _vae(cfg: DictConfig, args: argparse.Namespace) -> object:
    from tunelab.families import family

    paths, message = family("music_vae").run_verb(
        cfg, args.action, args.files, steps=args.steps, attribute=args.name, amount=args.amount,
        temperature=args.temperature, out=args.out)
    print(message)
    return paths[0] if paths and args.action != "sample" else paths


def _params(check: bool) -> int:
    from tunelab.config import params_snapshot, write_params

    if not check:
        write_params()
        print("wrote params.yaml")
        return 0
    current = OmegaConf.to_container(OmegaConf.load("params.yaml"))
    if current != params_snapshot():
        print(f"{Path('params.yaml').resolve()} differs from conf/: run `tunelab params`",
              file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tunelab",
        description="Reproducible AI-music pipeline. Each verb is one DVC stage; the rest of "
                    "the command line is Hydra overrides of conf/ (group=option, key=value).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run everything: dvc repro. Config groups: corpus, model, trainer, logger, experiment.")
    sub = p.add_subparsers(dest="verb", metavar="verb")
    for verb, (summary, example) in VERBS.items():
        sp = sub.add_parser(verb, help=summary, description=f"{summary}.\n\nexample:\n  {example}",
                            aliases=[a for a, v in ALIASES.items() if v == verb],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.add_argument("-m", "--multirun", action="store_true",
                        help="a sweep: one job per combination of comma-separated values (train only; "
                             "hydra/launcher=joblib|submitit_local|submitit_slurm, hparams_search=...)")
        if verb == "params":
            sp.add_argument("--check", action="store_true", help="fail if params.yaml is stale")
            continue
        if verb == "accompany":
            sp.add_argument("melody", type=Path, help="MIDI file whose melody to accompany")
            sp.add_argument("--out", type=Path, default=None,
                            help="output MIDI (default: <melody>_accompanied.mid)")
            sp.add_argument("--track", default=None,
                            help="melody track name (default: the first pitched track)")
        if verb == "compare":
            sp.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                            help="{model}-{corpus} runs to compare (default: every local run)")
            sp.add_argument("--wandb", default=None, metavar="ENTITY/PROJECT",
                            help="compare online W&B runs of this project instead of local ones")
            sp.add_argument("--keys", nargs="+", default=None, metavar="KEY",
                            help="dotted config/metric keys to show (default: those that differ)")
        if verb == "vae":
            sp.add_argument("action", choices=VAE_ACTIONS, help="what to do with the trained MusicVAE")
            sp.add_argument("--steps", type=int, default=8,
                            help="interpolate: windows from a to b, ends included")
            sp.add_argument("--name", default=None,
                            help="attribute: note_density, pitch_range or average_interval")
            sp.add_argument("--amount", type=float, default=1.0,
                            help="attribute: multiple of the attribute vector to add (negative: less)")
            sp.add_argument("--temperature", type=float, default=0.5,
                            help="decoder temperature (Magenta's music_vae_generate default 0.5; 0 = argmax)")
            sp.add_argument("--out", type=Path, default=None, help="output MIDI (default: beside the input)")
        sp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. corpus=jazz trainer.max_steps=50")
        sp.add_argument("--cfg", action="store_true", help="print the composed config and exit")
        sp.add_argument("--verbose", action="store_true", help="show tracebacks on error")
    return p


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a killed stage unwinds and removes its temporary outputs


def main(argv: list[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    if extra:  # `tunelab vae` lets files and overrides follow its options
        if getattr(args, "verb", None) != "vae" or any(e.startswith("-") for e in extra):
            parser().error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    signal.signal(signal.SIGTERM, _terminated)
    if not args.verb:
        parser().print_help()
        return 2
    verb = ALIASES.get(args.verb, args.verb)
    # Only our own logger: Lightning and W&B configure theirs, and a root handler doubles them.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("tunelab").addHandler(handler)
    logging.getLogger("tunelab").setLevel(logging.INFO)
    os.environ.setdefault("WANDB_SILENT", "true")
    from tunelab.config import ConfigError, load_config

    try:
        if args.multirun:  # Hydra launches the jobs and sets up their logging (tunelab.experiments.sweep)
            from tunelab.experiments.sweep import multirun

            if getattr(args, "cfg", False):
                raise ConfigError("--cfg prints one config: drop -m (each job saves its .hydra/config.yaml)")
            multirun(verb, getattr(args, "overrides", []))
            return 0
        if verb == "params":
            return _params(args.check)
        overrides = list(args.overrides)
        if any(o.lstrip("+").startswith("hparams_search=") for o in overrides):
            raise ConfigError("hparams_search runs a sweep: add -m (tunelab train -m hparams_search=...)")
        if verb == "accompany":  # the accompaniment model unless told otherwise
            overrides.insert(0, "model=music_transformer_accompaniment")
        if verb == "vae":  # MIDI files and Hydra overrides share the positional arguments
            args.files = [Path(o) for o in overrides if "=" not in o]
            overrides = ["model=music_vae_mel_2bar", *(o for o in overrides if "=" in o)]
        cfg = load_config(overrides)
        if args.cfg:
            print(OmegaConf.to_yaml(cfg))
            return 0
        if verb == "check":
            return _run(verb, cfg, args)
        _run(verb, cfg, args)
    except KeyboardInterrupt:
        print(f"tunelab {verb}: interrupted; outputs left as they were", file=sys.stderr)
        return 130
    except ConfigError as e:
        print(f"tunelab {verb}: config error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        if getattr(args, "verbose", False):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"tunelab {verb}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
