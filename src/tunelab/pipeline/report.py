"""The offline HTML report: ``reports/index.html`` and its assets in ``reports/site/``.

One static page, no network (inline CSS, no scripts, no web fonts), every link relative
so the ``reports/`` folder can be zipped and opened anywhere. Sections appear as their
inputs do: metrics (``reports/metrics/*.json``), the papers' tables (``reports/tables/*.md``),
figures (``reports/figures/``) and, for each run in ``samples/``, its first samples as
audio (fluidsynth), a piano roll and the MIDI. A missing input gives a "not produced
yet" note, never a placeholder number. The page has no timestamps: the same inputs give
the same bytes.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mido
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_text_atomic
from tunelab.music.audio import AudioRenderError, FluidsynthNotFoundError, fluidsynth_executable, render_wav
from tunelab.music.midi_io import CorruptMidiError, read_midi
from tunelab.plotting import write_piano_roll, write_spectrogram

log = logging.getLogger(__name__)

TITLE = "tunelab — experiment report"
DASH = "—"
STEPS_PER_QUARTER = 4  # piano rolls on the 16th-note grid every model uses
BAR_STEPS = 16  # a dashed line every 4/4 bar
WIDE_ROLL_PX = 1000  # a piano roll wider than this (about 19 bars) spans the whole samples grid
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")


# ---------------------------------------------------------------- small helpers


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def url(rel: str | Path) -> str:
    """A relative URL for an href/src attribute (percent-encoded, then HTML-escaped)."""
    return esc(quote(Path(rel).as_posix(), safe="/"))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def pick(data: Any, path: str, default: Any = None) -> Any:
    """``data["a"]["b"]`` for path ``"a.b"``; ``default`` when any step is missing."""
    cur = data
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur


def fmt(value: Any) -> str:
    """A metric for a table cell: 3 decimals below 100, fewer above; "—" when absent."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        a = abs(value)
        return f"{value:,.0f}" if a >= 1000 else f"{value:.1f}" if a >= 100 else f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) if value else DASH
    return str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (so the page does not jump while loading)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _img(src: str, alt: str, size: tuple[int, int] | None, cls: str = "") -> str:
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<img src="{url(src)}" alt="{esc(alt)}"{dims}{klass}>'


def _visible(paths: list[Path]) -> list[Path]:
    """Skip dot files: atomic writers (ours, DVC's) keep half-written outputs under dot names."""
    return [p for p in paths if not p.name.startswith(".")]


def _empty(what: str) -> str:
    return f'<p class="empty">Not produced yet: {what}.</p>'


# ---------------------------------------------------------------- markdown tables


_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_NUMBER = re.compile(r"^[-+−]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][-+]?\d+)?%?$")


def inline_md(text: str) -> str:
    """Escape, then the inline markdown our tables use: `code`, **bold**, [text](link)."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def _cells(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def _align(sep: str) -> str:
    sep = sep.strip()
    if sep.startswith(":") and sep.endswith(":"):
        return "center"
    return "right" if sep.endswith(":") else ""


def markdown_to_html(text: str, heading_level: int = 3) -> str:
    """GitHub-flavoured markdown as our tables stage writes it: headings, paragraphs,
    ``- `` lists and pipe tables (alignment row honoured; numbers right-aligned)."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{inline_md(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline_md(i)}</li>" for i in items) + "</ul>")
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if "|" in line and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]) and "-" in lines[i + 1]:
            flush()
            header, aligns = _cells(line), [_align(c) for c in _cells(lines[i + 1])]
            i += 2
            rows = []
            while i < len(lines) and lines[i].strip() and "|" in lines[i]:
                rows.append(_cells(lines[i]))
                i += 1
            out.append(_html_table(header, rows, aligns))
            continue
        if heading:
            flush()
            level = min(6, heading_level + len(heading.group(1)) - 1)
            out.append(f"<h{level}>{inline_md(heading.group(2))}</h{level}>")
        elif re.match(r"^\s*[-*]\s+", line):
            if para:
                flush()
            items.append(re.sub(r"^\s*[-*]\s+", "", line))
        elif not line.strip():
            flush()
        elif items and line.startswith("  "):
            items[-1] += " " + line.strip()
        else:
            if items:
                flush()
            para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)


_ALIGN_CLASS = {"right": "num", "center": "center", "missing": "missing"}


def _html_table(header: list[str], rows: list[list[str]], aligns: list[str]) -> str:
    width = len(header)

    def cell(tag: str, text: str, col: int) -> str:
        align = aligns[col] if col < len(aligns) else ""
        numeric = _NUMBER.match(text.replace(" ", "")) and any(c.isdigit() for c in text)
        if tag == "td" and not align and numeric:
            align = "right"
        if tag == "td" and text.strip() in (DASH, "-", ""):
            align = "missing"  # an empty cell reads as "not reported", centred and grey
        cls = f' class="{_ALIGN_CLASS[align]}"' if align else ""
        return f"<{tag}{cls}>{inline_md(text)}</{tag}>"

    head = "".join(cell("th", h, k) for k, h in enumerate(header))
    body = []
    for r in rows:
        r = (r + [""] * width)[:width]  # GitHub pads short rows and drops extra cells
        body.append("<tr>" + "".join(cell("td", c, k) for k, c in enumerate(r)) + "</tr>")
    return (f'<div class="table-wrap"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody>\n</table></div>")


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Column:
    header: str
    path: str  # dotted key in a run's metrics JSON
    help: str
    always: bool = False  # shown even when no run has it yet


METRIC_COLUMNS = (
    Column("test bits/step", "test.bits_per_step",
           "Cross-entropy on the test split in bits per step of the run's encoding (lower is better; "
           "compare runs of the same encoding only).", always=True),
    Column("test bits/note", "test.bits_per_note",
           "The same test cross-entropy summed and divided by the notes the test split decodes to: "
           "compares encodings that spend different numbers of tokens per note."),
    Column("n-gram bits/step", "ngram_baseline.bits_per_step",
           "The best bigram/trigram baseline with add-k smoothing (order and k tuned on the validation "
           "split) over the same labels and positions."),
    Column("beats n-gram", "beats_baseline",
           "Whether the model's test bits/step is below the n-gram baseline's.", always=True),
    Column("VAE accuracy", "test.accuracy_teacher_forced",
           "MusicVAE: teacher-forced reconstruction accuracy over the test windows' 16th steps."),
    Column("style adherence", "style_adherence.overall",
           "MuseNet: share of samples the style classifier assigns to the style they were steered to."),
    Column("mean OA", "relative.mean_oa",
           "mgeval overlapping area between the samples' and the test set's feature distributions, "
           "averaged over features (0..1, higher = samples closer to the test set)."),
    Column("copied share", "novelty.copied_share",
           "Novelty: the share of samples that repeat `evaluate.novelty_bars` (default 2) bars of a "
           "training piece (longest common run of melody events, transposition-invariant; "
           "lower = more novel)."),
)


@dataclass
class Run:
    name: str
    file: str
    model: str
    corpus: str
    data: dict


def load_runs(metrics_dir: Path) -> tuple[list[Run], list[tuple[str, str]]]:
    """Every ``{model}-{corpus}.json``, by name; unreadable files come back as (file, reason)."""
    runs, bad = [], []
    for p in _visible(sorted(metrics_dir.glob("*.json"))) if metrics_dir.is_dir() else []:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            bad.append((p.name, f"unreadable JSON: {e}"))
            continue
        if not isinstance(data, dict):
            bad.append((p.name, "not a JSON object"))
            continue
        model, sep, corpus = p.stem.rpartition("-")
        runs.append(Run(p.stem, p.name, model if sep else p.stem, corpus if sep else DASH, data))
    return runs, bad


def _style_view(run: Run, style: str) -> dict:
    """A MuseNet style's numbers in the shape of a run's, so the same columns apply."""
    view = dict(run.data["styles"][style])
    share = pick(run.data, f"style_adherence.per_style.{style}.share")
    if share is not None:
        view["style_adherence"] = {"overall": share}
    return view


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out
    return [(prefix[:-1], data)]


def metrics_section(reports: Path) -> str:
    runs, bad = load_runs(reports / "metrics")
    if not runs and not bad:
        return _empty("no <code>reports/metrics/*.json</code> "
                      "(run <code>dvc repro</code>: the evaluate stages)")
    cols = [c for c in METRIC_COLUMNS if c.always or any(pick(r.data, c.path) is not None for r in runs)]
    head = "".join(f"<th>{h}</th>" for h in ("run", "model", "corpus", "encoding"))
    head += "".join(f'<th class="num" title="{esc(c.help)}">{esc(c.header)}</th>' for c in cols)
    rows = []
    for r in runs:
        enc = pick(r.data, "encoding", DASH)
        rows.append(_metric_row(f'<a href="{url("metrics/" + r.file)}">{esc(r.name)}</a>',
                                r.model, r.corpus, enc, r.data, cols, f"run-{slug(r.name)}"))
        styles = r.data.get("styles")
        for style in sorted(styles) if isinstance(styles, dict) else []:
            if isinstance(styles[style], dict):
                rows.append(_metric_row(f"↳ style <code>{esc(style)}</code>", r.model, style, enc,
                                        _style_view(r, style), cols, "", cls="sub"))
    legend = "".join(f"<dt>{esc(c.header)}</dt><dd>{esc(c.help)} <code>{esc(c.path)}</code></dd>"
                     for c in cols)
    details = "\n".join(
        f'<details><summary>{esc(r.name)}</summary><table class="kv"><tbody>'
        + "".join(f'<tr><th scope="row">{esc(k)}</th><td class="num">{esc(fmt(v))}</td></tr>'
                  for k, v in _flatten(r.data))
        + "</tbody></table></details>" for r in runs)
    parts = [
        f"<p>{len(runs)} runs, one per <code>reports/metrics/{{model}}-{{corpus}}.json</code>; "
        "a column appears once any run has its key. Hover a header for its definition.</p>",
        f'<div class="table-wrap"><table class="metrics">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows) + "\n</tbody>\n</table></div>",
        f'<dl class="legend">{legend}</dl>',
    ]
    if bad:
        parts.append(_skipped_list(bad))
    if runs:
        parts.append(f'<details class="all"><summary>Every value of every run</summary>\n{details}\n'
                     "</details>")
    return "\n".join(parts)


def _metric_row(run_cell: str, model: str, corpus: str, encoding: Any, data: dict, cols: list[Column],
                row_id: str, cls: str = "") -> str:
    attrs = (f' id="{row_id}"' if row_id else "") + (f' class="{cls}"' if cls else "")
    cells = [f"<td>{run_cell}</td>", f"<td>{esc(model)}</td>", f"<td>{esc(corpus)}</td>",
             f"<td>{esc(fmt(encoding))}</td>"]
    for c in cols:
        v = pick(data, c.path)
        if isinstance(v, bool):
            cells.append(f'<td class="num {"yes" if v else "no"}">{fmt(v)}</td>')
        else:
            cells.append(f'<td class="num{"" if _is_num(v) else " missing"}">{esc(fmt(v))}</td>')
    return f"<tr{attrs}>" + "".join(cells) + "</tr>"


# ---------------------------------------------------------------- tables and figures


def tables_section(reports: Path) -> str:
    tables = _visible(sorted((reports / "tables").glob("*.md"))) if (reports / "tables").is_dir() else []
    if not tables:
        return _empty("no <code>reports/tables/*.md</code> (run <code>dvc repro tables</code>)")
    parts = []
    for p in tables:
        text = p.read_text(encoding="utf-8")
        body = markdown_to_html(text)
        if not body.lstrip().startswith("<h3"):
            body = f"<h3>{esc(p.stem.replace('_', ' '))}</h3>\n{body}"
        twin = p.with_suffix(".json")
        src = f'<a href="{url("tables/" + p.name)}">{esc(p.name)}</a>'
        if twin.is_file():
            src += f', <a href="{url("tables/" + twin.name)}">{esc(twin.name)}</a>'
        parts.append(f'<article class="paper-table" id="table-{slug(p.stem)}">\n{body}\n'
                     f'<p class="source">Source: {src}</p>\n</article>')
    return "\n".join(parts)


def _figure_entries(fig_dir: Path) -> tuple[list[dict], str]:
    index = fig_dir / "index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        entries = data.get("figures", []) if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "file" in e for e in entries):
            raise ValueError(f"{index}: expected a list of {{'file', 'title', 'caption'}} objects")
        return entries, "figures/index.json"
    pngs = _visible(sorted(fig_dir.glob("*.png"))) if fig_dir.is_dir() else []
    return [{"file": p.name, "title": p.stem.replace("_", " ")} for p in pngs], "figures/*.png"


def figures_section(reports: Path) -> str:
    fig_dir = reports / "figures"
    try:
        entries, source = _figure_entries(fig_dir)
    except (OSError, ValueError) as e:
        log.warning("report: figures index unreadable: %s", e)
        return _empty(f"<code>reports/figures/index.json</code> is unreadable ({esc(e)})")
    if not entries:
        return _empty("no figures in <code>reports/figures/</code> (run <code>dvc repro figures</code>)")
    parts, missing, ids = [], [], set()
    root = fig_dir.resolve()
    for e in entries:
        rel = str(e["file"])
        path = (fig_dir / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            missing.append((rel, "listed in index.json but not an image file in reports/figures/"))
            continue
        n = len(parts) + 1
        title = str(e.get("title") or Path(rel).stem.replace("_", " "))
        fid = f"fig-{slug(Path(rel).with_suffix('').as_posix())}"
        fid = fid if fid not in ids else f"{fid}-{n}"
        ids.add(fid)
        src = "figures/" + Path(rel).as_posix()
        links = [f'<a href="{url(src)}">{esc(path.suffix[1:].upper())}</a>']
        svg = Path(str(e.get("svg") or Path(rel).with_suffix(".svg")))  # the figures stage names its twin
        if svg.suffix.lower() == ".svg" and path.suffix.lower() != ".svg" and (fig_dir / svg).is_file() \
                and (fig_dir / svg).resolve().is_relative_to(root):
            links.append(f'<a href="{url("figures/" + svg.as_posix())}">SVG</a>')
        caption = f' {inline_md(str(e["caption"]))}' if e.get("caption") else ""
        img = _img(src, title, png_size(path) if path.suffix.lower() == ".png" else None)
        parts.append(f'<figure class="figure" id="{fid}">\n<a href="{url(src)}">{img}</a>\n'
                     f"<figcaption><strong>Figure {n}. {inline_md(title)}.</strong>{caption} "
                     f'<span class="links">[{" · ".join(links)}]</span></figcaption>\n</figure>')
    out = [f'<p class="note">From <code>{esc(source)}</code>.</p>', *parts]
    if missing:
        out.append(_skipped_list(missing, "missing"))
    not_drawn = _figures_skipped(fig_dir / "skipped.json")
    if not_drawn:
        out.append(_skipped_list(not_drawn, "not drawn"))
    return "\n".join(out)


def _figures_skipped(path: Path) -> list[tuple[str, str]]:
    """The figures stage's ``skipped.json`` (name -> why): figures whose inputs are missing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as e:
        log.warning("report: %s unreadable: %s", path, e)
        return []
    return sorted((str(k), str(v)) for k, v in data.items()) if isinstance(data, dict) else []


# ---------------------------------------------------------------- samples


@dataclass
class Sample:
    run: str
    midi_name: str
    midi_rel: str
    roll_rel: str
    wav_rel: str | None
    midi_seconds: float
    audio_seconds: float | None
    roll_size: tuple[int, int] | None
    cut: bool  # the audio stops at max_seconds, before the MIDI does
    kind: str = "MIDI"  # what the sample is: MIDI (rendered here) or WAV (an audio model's output)


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def _reason(err: Exception, midi: Path) -> str:
    """One line, without the absolute path (the page names the file already)."""
    text = (str(err) or type(err).__name__).replace(f"{midi}: ", "").replace(str(midi), midi.name)
    return text.splitlines()[0] if text else type(err).__name__


def render_samples(samples_dir: Path, site: Path, per_run: int, sample_rate: int,
                   max_seconds: float | None, audio: bool
                   ) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Audio, piano roll and a MIDI copy of each run's first ``per_run`` samples into ``site``."""
    runs = _visible(sorted(p for p in samples_dir.iterdir() if p.is_dir())) if samples_dir.is_dir() else []
    # MIDI samples, or an audio model's WAVs when a run has no MIDI
    jobs = [(run, f) for run in runs
            for f in (_visible(sorted(run.glob("*.mid"))) or _visible(sorted(run.glob("*.wav"))))[:per_run]]
    done: dict[str, list[Sample]] = {run.name: [] for run in runs}
    skipped: list[tuple[str, str]] = []
    for run, midi in tqdm(jobs, desc="report: samples", unit="sample", leave=False):
        rel = f"{run.name}/{midi.stem}"
        outs = {"midi": site / "midi" / run.name / midi.name, "roll": site / "rolls" / f"{rel}.png",
                "wav": site / "audio" / f"{rel}.wav"}
        if midi.suffix == ".wav":
            try:
                outs["wav"].parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(midi, outs["wav"])
                write_spectrogram(midi, outs["roll"], f"{run.name} / {midi.name}")
                seconds = _wav_seconds(outs["wav"])
            except (OSError, ValueError, RuntimeError, wave.Error) as e:
                for p in outs.values():
                    p.unlink(missing_ok=True)
                skipped.append((f"{run.name}/{midi.name}", _reason(e, midi)))
                continue
            wav_rel = f"site/audio/{rel}.wav"
            done[run.name].append(Sample(run.name, midi.name, wav_rel, f"site/rolls/{rel}.png", wav_rel,
                                         seconds, seconds, png_size(outs["roll"]), False, kind="WAV"))
            continue
        try:
            score = read_midi(midi, STEPS_PER_QUARTER)
            midi_seconds = float(mido.MidiFile(midi).length)
            if audio:
                render_wav(midi, outs["wav"], sample_rate, max_seconds)
            write_piano_roll(score, outs["roll"], BAR_STEPS, f"{run.name} / {midi.name}")
            outs["midi"].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(midi, outs["midi"])
        except (CorruptMidiError, AudioRenderError, OSError, ValueError, EOFError, KeyError) as e:
            for p in outs.values():  # no orphan assets of a skipped sample
                p.unlink(missing_ok=True)
            reason = _reason(e, midi)
            log.warning("report: skipped %s/%s: %s", run.name, midi.name, reason)
            skipped.append((f"{run.name}/{midi.name}", reason))
            continue
        done[run.name].append(Sample(
            run.name, midi.name, f"site/midi/{run.name}/{midi.name}", f"site/rolls/{rel}.png",
            f"site/audio/{rel}.wav" if audio else None, midi_seconds,
            _wav_seconds(outs["wav"]) if audio else None, png_size(outs["roll"]),
            audio and max_seconds is not None and midi_seconds > max_seconds))
    return done, skipped


def _sample_html(s: Sample) -> str:
    dur = f"{s.midi_seconds:.1f} s"
    audio = ""
    if s.wav_rel is not None:
        if s.cut and s.audio_seconds is not None:
            dur += f" (audio: first {s.audio_seconds:.4g} s)"
        audio = (f'<audio controls preload="metadata"><source src="{url(s.wav_rel)}" type="audio/wav">'
                 f'<a href="{url(s.wav_rel)}">WAV</a></audio>\n')
    picture = "piano roll" if s.kind == "MIDI" else "spectrogram"
    roll = _img(s.roll_rel, f"{picture} of {s.run}/{s.midi_name}", s.roll_size, "roll")
    wide = " wide" if s.roll_size and s.roll_size[0] > WIDE_ROLL_PX else ""  # long samples get a whole row
    return (f'<figure class="sample{wide}" id="sample-{slug(s.run)}-{slug(Path(s.midi_name).stem)}">\n'
            f'<figcaption><span class="name">{esc(s.midi_name)}</span> · {esc(dur)} · '
            f'<a href="{url(s.midi_rel)}" download>{s.kind}</a></figcaption>\n{audio}{roll}\n</figure>')


def samples_section(samples: dict[str, list[Sample]], skipped: list[tuple[str, str]], reports: Path,
                    cfg: DictConfig, audio_note: str) -> str:
    if not samples:
        return _empty("no run folders in <code>samples/</code> "
                      "(run <code>dvc repro</code>: the sample stages)")
    rate, cut = int(cfg.report.sample_rate), cfg.report.max_seconds
    parts = [f"<p>The first {int(cfg.report.samples_per_run)} samples of each run (by file name). "
             f"Audio: fluidsynth with the TimGM6mb General MIDI soundfont, mono, {rate:,} Hz"
             + (f", cut at {float(cut):g} s (the MIDI has the whole sample)" if cut else "")
             + f". Piano rolls on the 16th-note grid, a dashed line every bar ({BAR_STEPS} steps).</p>"]
    if audio_note:
        parts.append(f'<p class="warn">No audio: {esc(audio_note)}</p>')
    for run, items in samples.items():
        metrics = reports / "metrics" / f"{run}.json"
        link = f' <a class="small" href="#run-{slug(run)}">metrics</a>' if metrics.is_file() else ""
        failed = any(f.startswith(f"{run}/") for f, _ in skipped)
        none = "No sample could be read (see the skipped list below)." if failed else "No MIDI files here."
        body = "\n".join(_sample_html(s) for s in items) or f'<p class="empty">{none}</p>'
        parts.append(f'<article class="run" id="samples-{slug(run)}">\n'
                     f'<h3><code>{esc(run)}</code>{link}</h3>\n'
                     f'<div class="samples">\n{body}\n</div>\n</article>')
    if skipped:
        parts.append(_skipped_list(skipped))
    return "\n".join(parts)


def _skipped_list(items: list[tuple[str, str]], label: str = "skipped") -> str:
    lis = "".join(f"<li>{label}: <code>{esc(f)}</code> — {esc(r)}</li>" for f, r in items)
    return f'<ul class="skipped">{lis}</ul>'


# ---------------------------------------------------------------- the page


CSS = """
:root { color-scheme: light; --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --head: #f1f4f7;
  --accent: #2458a6; --stripe: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { background: #17212e; color: #f4f6f8; padding: 1.6rem 1rem 1.3rem; }
header.top h1 { margin: 0 auto; max-width: 78rem; font-size: 1.7rem; font-weight: 650; }
header.top p { margin: .35rem auto 0; max-width: 78rem; color: #b9c3cf; }
header.top code { background: #2a3646; color: #e8edf2; }
main, nav.toc { max-width: 78rem; margin: 0 auto; padding: 0 1rem; }
nav.toc { margin-top: 1.2rem; }
nav.toc ol { margin: .2rem 0 0; padding-left: 1.3rem; columns: 2; }
nav.toc h2 { font-size: 1rem; margin: 0; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); }
section { margin: 2.2rem 0; }
h2 { font-size: 1.4rem; border-bottom: 2px solid var(--line); padding-bottom: .25rem; margin-bottom: .8rem; }
h3 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
a { color: var(--accent); }
code { font: .88em/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f3f5f8; padding: .05em .3em; border-radius: 3px; }
.table-wrap { overflow-x: auto; margin: .6rem 0; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
table.metrics { font-size: .85rem; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; vertical-align: top; text-align: left; }
thead th { background: var(--head); position: sticky; top: 0; white-space: nowrap; }
thead th[title] { cursor: help; text-decoration: underline dotted var(--muted); }
tbody tr:nth-child(even) { background: var(--stripe); }
tbody tr:hover { background: #eef4fb; }
td.num, th.num { text-align: right; }
td.center, th.center { text-align: center; }
td.missing { color: #9aa4ae; text-align: center; }
td.yes { color: #1d7a3a; font-weight: 600; }
td.no { color: #a33a2b; }
tr.sub td { font-size: .85rem; color: var(--muted); }
tr.sub td:first-child { padding-left: 1.4rem; }
table.kv th { font-weight: normal; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .85rem; }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; font-size: .88rem;
  color: var(--muted); }
dl.legend dt { font-weight: 600; color: var(--fg); }
dl.legend dd { margin: 0; }
details { margin: .4rem 0; }
details.all > details { margin-left: 1rem; }
summary { cursor: pointer; color: var(--accent); }
article.paper-table { margin-bottom: 2rem; }
p.source, p.note, .small { font-size: .85rem; color: var(--muted); }
figure { margin: 1.4rem 0; }
figure.figure img { display: block; max-width: min(100%, 56rem); height: auto;
  border: 1px solid var(--line); }
figcaption { font-size: .92rem; margin-top: .4rem; max-width: 56rem; }
figcaption .links { color: var(--muted); font-size: .85rem; }
article.run { border-top: 1px solid var(--line); padding-top: .3rem; }
div.samples { display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr)); }
figure.sample { margin: 0; padding: .6rem .8rem; border: 1px solid var(--line); border-radius: 6px;
  background: var(--stripe); }
figure.sample figcaption { margin: 0 0 .4rem; }
figure.sample .name { font-weight: 600; }
figure.sample.wide { grid-column: 1 / -1; }
figure.sample audio { display: block; width: 100%; max-width: 36rem; margin-bottom: .5rem; }
img.roll { display: block; max-width: 100%; height: auto; background: #fff; }
p.empty, p.warn { padding: .6rem .9rem; border-radius: 4px; background: #f6f7f9; color: var(--muted);
  border-left: 4px solid var(--line); }
p.warn { background: #fff6e5; border-left-color: #e0a336; color: #6b4b0f; }
ul.skipped { font-size: .88rem; color: #8a3a2b; }
footer { max-width: 78rem; margin: 3rem auto 2rem; padding: 0 1rem; font-size: .85rem; color: var(--muted); }
"""


def _page(sections: list[tuple[str, str, str]]) -> str:
    toc = "".join(f'<li><a href="#{sid}">{esc(title)}</a></li>' for sid, title, _ in sections)
    body = "\n".join(f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{content}\n</section>'
                     for sid, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(TITLE)}</title>
<link rel="icon" href="data:,">
<style>{CSS}</style>
</head>
<body>
<header class="top">
<h1>{esc(TITLE)}</h1>
<p>Metrics, the papers' tables, figures and listenable samples of every run, written by
<code>tunelab report</code>. Everything is on this page or beside it: it works offline.</p>
</header>
<nav class="toc" aria-label="Contents">
<h2>Contents</h2>
<ol>{toc}</ol>
</nav>
<main>
{body}
</main>
<footer>Built by <code>tunelab report</code> from <code>reports/metrics</code>, <code>reports/tables</code>,
<code>reports/figures</code> and <code>samples/</code>; rebuild with <code>tunelab report</code>.</footer>
</body>
</html>
"""


def build_report(cfg: DictConfig) -> Path:
    """Write ``reports/index.html`` and its assets in ``reports/site/``; return the page's path.

    The assets are built in a temporary folder and swapped in whole, then the page is
    written (atomically) last, so a failed build leaves the previous report as it was.
    A sample that cannot be read or rendered is listed on the page as skipped.
    """
    reports, samples_dir = Path(cfg.paths.reports), Path(cfg.paths.samples)
    audio_note = ""
    try:
        fluidsynth_executable()
    except FluidsynthNotFoundError as e:  # rolls and MIDI still help; say why there is no audio
        audio_note = str(e)
        log.warning("report: %s", e)
    with atomic_dir(reports / "site") as site:
        samples, skipped = render_samples(samples_dir, site, int(cfg.report.samples_per_run),
                                          int(cfg.report.sample_rate), cfg.report.max_seconds,
                                          audio=not audio_note)
    sections = [
        ("metrics", "Metrics", metrics_section(reports)),
        ("tables", "Paper tables", tables_section(reports)),
        ("figures", "Figures", figures_section(reports)),
        ("samples", "Samples", samples_section(samples, skipped, reports, cfg, audio_note)),
    ]
    index = reports / "index.html"
    write_text_atomic(index, _page(sections))
    return index
