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
    "tokenize": ("encode a corpus -> data/processed/{corpus}/{encoding}/",
                 "tunelab tokenize corpus=bach encoding=lookback"),
    "train": ("train a model on a corpus -> models/{model}-{corpus}/",
              "tunelab train model=melody_rnn_basic corpus=children trainer.max_steps=200"),
    "sample": ("generate MIDI from a trained model -> samples/{model}-{corpus}/",
               "tunelab sample corpus=bach sample.num_outputs=8 sample.temperature=0.9"),
    "evaluate": ("test NLL and pitch statistics -> reports/metrics/{model}-{corpus}.json",
                 "tunelab evaluate corpus=bach"),
    "tables": ("the papers' comparison tables, published beside ours -> reports/tables/",
               "tunelab tables"),
    "accompany": ("write an accompaniment for a MIDI melody (Music Transformer encoder-decoder)",
                  "tunelab accompany tune.mid corpus=bach   # -> tune_accompanied.mid (S + A T B)"),
}
ALIASES = {"generate": "sample"}


def _run(verb: str, cfg: DictConfig, args: argparse.Namespace) -> object:
    from tunelab import extract, tokenize

    if verb == "accompany":
        from tunelab.accompany import accompany

        path = accompany(cfg, args.melody, args.out, args.track)
        print(path)
        return path
    if verb == "tables":
        from tunelab.paper import write_tables

        return write_tables(cfg)
    if verb == "download":
        return extract.download(cfg)
    if verb == "extract":
        return extract.extract(cfg)
    if verb == "tokenize":
        return tokenize.tokenize(cfg, cfg.encoding or cfg.model.encoding)
    if verb == "train":
        from tunelab.train import train

        return train(cfg)
    if verb == "sample":
        from tunelab.sample import sample

        return sample(cfg)
    from tunelab.evaluate import evaluate

    return evaluate(cfg)


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
        if verb == "params":
            sp.add_argument("--check", action="store_true", help="fail if params.yaml is stale")
            continue
        if verb == "accompany":
            sp.add_argument("melody", type=Path, help="MIDI file whose melody to accompany")
            sp.add_argument("--out", type=Path, default=None,
                            help="output MIDI (default: <melody>_accompanied.mid)")
            sp.add_argument("--track", default=None,
                            help="melody track name (default: the first pitched track)")
        sp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. corpus=jazz trainer.max_steps=50")
        sp.add_argument("--cfg", action="store_true", help="print the composed config and exit")
        sp.add_argument("--verbose", action="store_true", help="show tracebacks on error")
    return p


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a killed stage unwinds and removes its temporary outputs


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
        if verb == "params":
            return _params(args.check)
        overrides = list(args.overrides)
        if verb == "accompany":  # the accompaniment model unless told otherwise
            overrides.insert(0, "model=music_transformer_accompaniment")
        cfg = load_config(overrides)
        if args.cfg:
            print(OmegaConf.to_yaml(cfg))
            return 0
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
