"""Style classifier: hand-checked features, a separable toy fit, and the real corpora."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunelab.families.musenet.style import (
    IOI_BINS,
    NUM_FEATURES,
    StyleClassifier,
    style_adherence,
    style_features,
    train_style_classifier,
)
from tunelab.music.score import Note, Score, Track, load_scores

REPO = Path(__file__).resolve().parents[1]
C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)


def scale_score(pitches=C_MAJOR, step: int = 4, sid: str = "scale", split: str = "train") -> Score:
    notes = tuple(Note(i * step, (i + 1) * step, p) for i, p in enumerate(pitches))
    return Score(id=sid, tracks=(Track("melody", notes),), meta={"split": split})


def test_scale_features_by_hand():
    f = style_features(scale_score())
    assert f.shape == (NUM_FEATURES,) and f.dtype == np.float64
    pch, ivh, ioih = f[0:12], f[12:37], f[37:45]
    # C appears twice (60 and 72), the other six degrees once, each a quarter long
    assert np.count_nonzero(pch) == 7
    assert pch[0] == pytest.approx(2 / 8)
    for pc in (2, 4, 5, 7, 9, 11):
        assert pch[pc] == pytest.approx(1 / 8)
    # 7 intervals: +2 +2 +1 +2 +2 +2 +1; bin i holds interval i - 12
    assert ivh[12 + 2] == pytest.approx(5 / 7) and ivh[12 + 1] == pytest.approx(2 / 7)
    assert ivh.sum() == pytest.approx(1.0)
    assert ioih[IOI_BINS.index(4)] == pytest.approx(1.0) and ioih.sum() == pytest.approx(1.0)
    npq, poly, pmean, pstd = f[45:49]
    assert npq == pytest.approx(1.0)  # 8 notes over 8 quarters
    assert poly == pytest.approx(1.0)
    assert pmean == pytest.approx(np.mean(C_MAJOR) / 128)
    assert pstd == pytest.approx(np.std(C_MAJOR) / 128)


def test_polyphony_chords_and_long_iois():
    # a two-note chord held 8 steps, then silence, then one note 20 steps later
    notes = (Note(0, 8, 60), Note(0, 8, 64), Note(20, 24, 48))
    f = style_features(Score(id="x", tracks=(Track("p", notes),)))
    assert f[46] == pytest.approx((8 * 2 + 4 * 1) / 12)  # silent steps do not count
    assert f[37 + IOI_BINS.index(16)] == pytest.approx(1.0)  # IOI 20 -> ">= 16" bin
    assert f[12 + 0] == pytest.approx(1.0)  # top line 64 -> 48 = -16, clipped to -12 (bin 0)


def test_transposition_moves_only_pitch_mean_and_pitch_classes():
    a = style_features(scale_score())
    b = style_features(scale_score(tuple(p + 3 for p in C_MAJOR)))
    assert np.allclose(np.roll(a[0:12], 3), b[0:12])
    assert np.allclose(a[12:47], b[12:47]) and a[48] == pytest.approx(b[48])
    assert b[47] - a[47] == pytest.approx(3 / 128)


def test_empty_score_gives_zeros():
    for s in (Score(id="e", tracks=()), Score(id="e", tracks=(Track("m", ()),))):
        f = style_features(s)
        assert f.shape == (NUM_FEATURES,) and not np.isnan(f).any() and not f.any()


def _clusters(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(6, 1, (30, 5))])
    x[:, 4] = 2.0  # a constant feature must not break standardization
    return x, ["a"] * 30 + ["b"] * 30


def test_classifier_separable_clusters():
    x, y = _clusters()
    clf = StyleClassifier().fit(x, y)
    assert clf.classes == ["a", "b"]
    assert clf.predict(x) == y
    p = clf.predict_proba(x)
    assert p.shape == (60, 2) and np.allclose(p.sum(axis=1), 1.0) and np.isfinite(p).all()
    # deterministic
    assert np.array_equal(StyleClassifier().fit(x, y).weights, clf.weights)


def test_classifier_json_round_trip():
    x, y = _clusters()
    clf = StyleClassifier().fit(x, y)
    back = StyleClassifier.from_dict(json.loads(json.dumps(clf.to_dict())))
    xt, _ = _clusters(seed=1)
    assert back.predict(xt) == clf.predict(xt)
    assert np.array_equal(back.predict_proba(xt), clf.predict_proba(xt))


def _toy_styles():
    """'low': slow scales in the bass; 'high': fast scales up high."""
    low = [scale_score(tuple(p - 24 + k for p in C_MAJOR), step=8, sid=f"l{k}", split=sp)
           for k, sp in enumerate(["train"] * 4 + ["test", "valid"])]
    high = [scale_score(tuple(p + 12 + k for p in C_MAJOR), step=2, sid=f"h{k}", split=sp)
            for k, sp in enumerate(["train"] * 4 + ["valid"])]  # no test pieces
    return {"low": low, "high": high}


def test_train_report_and_missing_test_split():
    clf, report = train_style_classifier(_toy_styles())
    assert report["counts"] == {"low": {"train": 4, "test": 1, "valid": 1}, "high": {"train": 4, "valid": 1}}
    assert report["test"]["accuracy"] == 1.0 and report["test"]["per_style"] == {"low": 1.0, "high": None}
    assert report["valid"]["accuracy"] == 1.0
    assert report["test"]["confusion"] == {"low": {"high": 0, "low": 1}, "high": {"high": 0, "low": 0}}
    assert any("'high' has no test pieces" in n for n in report["notes"])
    json.dumps(report)


def test_style_adherence_hand_made():
    clf, _ = train_style_classifier(_toy_styles())
    low_like = scale_score(tuple(p - 24 for p in C_MAJOR), step=8)
    high_like = scale_score(tuple(p + 12 for p in C_MAJOR), step=2)
    # 'low' samples: 2 right, 1 wrong; 'high': 1 right; 'none': no samples
    res = style_adherence(clf, {"low": [low_like, low_like, high_like], "high": [high_like], "none": []})
    assert res["per_style"]["low"] == {"share": pytest.approx(2 / 3), "num_samples": 3,
                                       "predicted": {"low": 2, "high": 1}}
    assert res["per_style"]["high"]["share"] == 1.0
    assert res["per_style"]["none"] == {"share": None, "num_samples": 0, "predicted": {}}
    assert res["overall"] == pytest.approx(3 / 4) and res["num_samples"] == 4
    assert style_adherence(clf, {})["overall"] is None


REAL = ("bach", "children", "jazz")


@pytest.mark.slow
@pytest.mark.skipif(not all((REPO / f"data/interim/{c}/scores.jsonl.gz").exists() for c in REAL),
                    reason="extracted corpora not present under data/interim")
def test_real_corpora_held_out_accuracy():
    data = {c: load_scores(REPO / f"data/interim/{c}/scores.jsonl.gz") for c in REAL}
    clf, report = train_style_classifier(data)
    print(json.dumps({k: report[k] for k in ("counts", "valid", "test", "notes")}, indent=1))
    assert report["test"]["accuracy"] > 0.8
    # the classifier's own test pieces, fed back as "samples", must reproduce its test accuracy
    adh = style_adherence(clf, {c: [s for s in v if s.meta.get("split") == "test"] for c, v in data.items()})
    assert adh["overall"] == pytest.approx(report["test"]["accuracy"])
