"""Music Transformer's comparison table: JSB Chorales NLL beside Huang et al. 2019."""

from __future__ import annotations

from pathlib import Path

from tunelab.families.base import Table, run_metrics

# Huang et al. 2019 (Music Transformer), Table 1: JSB Chorales validation NLL per token.
MUSIC_TRANSFORMER_JSB = {
    "transformer_baseline": ("Transformer, absolute timing (Vaswani et al.)", 0.417),
    "music_transformer": ("Transformer, relative attention (Shaw et al.) + skewing", 0.357),
    "music_transformer_local": ("(not in the paper's JSB table)", None),
    "relative_pitch_and_timing": ("Music Transformer, relative attention + relative pitch and timing"
                                  " (not built here)", 0.335),
}


def music_transformer_jsb(metrics_dir: Path, size_label: str) -> tuple[str, list[dict]]:
    """Markdown table and rows: our JSB validation/test NLL per token vs the paper's."""
    rows = []
    for model, (desc, published) in MUSIC_TRANSFORMER_JSB.items():
        m = run_metrics(metrics_dir, f"{model}-jsb")
        rows.append({"model": model, "description": desc, "published_valid_nll": published,
                     "valid_nll": m["valid"]["nll_per_step"] if m else None,
                     "test_nll": m["test"]["nll_per_step"] if m else None})

    def cell(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    lines = [f"| model | paper: valid NLL | ours ({size_label}): valid NLL | ours: test NLL |",
             "|---|---|---|---|"]
    lines += [f"| `{r['model']}` — {r['description']} | {cell(r['published_valid_nll'])} | "
              f"{cell(r['valid_nll'])} | {cell(r['test_nll'])} |" for r in rows]
    return "\n".join(lines) + "\n", rows


JSB_TABLE = Table(
    "music_transformer_jsb",
    "# Music Transformer on JSB Chorales: NLL per token (nats), 16th-step voice grid\n\n"
    "Paper: Huang et al. 2019, Table 1 (validation). Ours: `dvc repro evaluate_jsb`.\n\n",
    music_transformer_jsb)
