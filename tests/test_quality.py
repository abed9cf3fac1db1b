"""`tunelab check`: the quality gates on reports/metrics/ (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.cli import main


def _write(reports: Path, run: str, metrics: dict) -> None:
    (reports / "metrics").mkdir(parents=True, exist_ok=True)
    (reports / "metrics" / f"{run}.json").write_text(json.dumps(metrics))


def _check(reports: Path, capsys: pytest.CaptureFixture) -> tuple[int, list[str], dict]:
    rc = main(["check", f"paths.reports={reports}"])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("quality gate unmet")]
    return rc, lines, json.loads((reports / "quality.json").read_text())


def test_gates_pass_and_fail_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path, "melody_rnn_basic-bach",
           {"test": {"nll_per_step": 0.90}, "ngram_baseline": {"nll_per_step": 1.0}})  # 10% below: met
    _write(tmp_path, "melody_rnn_attention-children",
           {"test": {"nll_per_step": 0.97}, "ngram_baseline": {"nll_per_step": 1.0}})  # 3% below: unmet
    _write(tmp_path, "music_vae_mel_2bar-jazz",
           {"test": {"accuracy_teacher_forced": 0.95, "accuracy_sampled": 0.80, "accuracy_majority": 0.60}})
    _write(tmp_path, "music_transformer-jsb", {"valid": {"nll_per_step": 0.45}})  # no vanilla run: unmet
    rc, lines, report = _check(tmp_path, capsys)
    assert rc == 1
    assert report["gates"] == 6 and report["unmet"] == 2
    assert len(lines) == 2
    assert any("melody_rnn_attention-children: test NLL / n-gram NLL = 0.97" in ln for ln in lines)
    assert any("vanilla baseline" in ln and "missing" in ln for ln in lines)


def test_all_met_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path, "performance_rnn-bach",
           {"test": {"nll_per_step": 2.0}, "ngram_baseline": {"nll_per_step": 2.5}})
    _write(tmp_path, "music_vae_mel_16bar_hier-bach",
           {"test": {"accuracy_teacher_forced": 0.85, "accuracy_majority": 0.76}})
    rc, lines, report = _check(tmp_path, capsys)
    assert (rc, lines, report["unmet"]) == (0, [], 0)


def test_a_model_without_its_baseline_fails_its_gate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path, "musenet-joint", {"styles": {"bach": {"test": {"nll_per_step": 2.3}}}})
    rc, lines, _ = _check(tmp_path, capsys)
    assert rc == 1 and lines == ["quality gate unmet: musenet-joint (bach): test NLL / n-gram NLL = missing, "
                                 "needs <= 0.95"]


def test_no_metrics_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", f"paths.reports={tmp_path}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no metrics to check" in err[0]
