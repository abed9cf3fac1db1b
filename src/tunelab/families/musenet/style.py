"""Style adherence: does a sample conditioned on style S *sound like* S?

A deliberately simple, transparent judge: multinomial logistic regression on
hand-made histogram features (pitch classes, melodic intervals, rhythm), trained on
the real corpora's ``train`` split. Its accuracy on held-out real pieces is the
ceiling to read the adherence numbers against: if it labels 90% of real test pieces
correctly and 60% of style-S samples as S, conditioning works only partially.

Kept free of scikit-learn on purpose (not a dependency); the fit is full-batch
L-BFGS in float64 on CPU, so it is deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from tunelab.music.score import Score

IOI_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # in 16th-note steps; the last bin means ">= 16"
INTERVAL_RANGE = 12  # melodic intervals clipped to -12..+12 semitones

#: Layout of :func:`style_features`, as (name, length) in order.
FEATURE_LAYOUT: tuple[tuple[str, int], ...] = (
    ("pitch_class_hist", 12),
    ("interval_hist", 2 * INTERVAL_RANGE + 1),
    ("ioi_hist", len(IOI_BINS)),
    ("notes_per_quarter", 1),
    ("mean_polyphony", 1),
    ("pitch_mean", 1),
    ("pitch_std", 1),
)
NUM_FEATURES = sum(n for _, n in FEATURE_LAYOUT)  # 49


def _normalized(h: np.ndarray) -> np.ndarray:
    s = h.sum()
    return h / s if s > 0 else h


def style_features(score: Score) -> np.ndarray:
    """Fixed-length (``NUM_FEATURES`` = 49) float64 description of a score's style.

    In order (see :data:`FEATURE_LAYOUT`); every histogram is normalized to sum 1
    (or all zeros if it has no events), and drum tracks are ignored:

    - ``[0:12]`` pitch-class histogram, each note weighted by its duration;
    - ``[12:37]`` melodic intervals between consecutive onsets within each track
      (the highest note at each onset, so chords in one track read as their top
      line), clipped to -12..+12; bin ``i`` is interval ``i - 12``;
    - ``[37:45]`` inter-onset intervals over the union of all onsets, in 16th-note
      steps (rescaled from ``steps_per_quarter``), assigned to the nearest of
      1, 2, 3, 4, 6, 8, 12, 16 (ties to the shorter; the last bin takes all >= 16);
    - ``[45]`` notes per quarter note over the score's length;
    - ``[46]`` mean polyphony: average number of sounding notes over the steps
      where anything sounds;
    - ``[47]``, ``[48]`` pitch mean and standard deviation over notes, divided by 128.

    Only the pitch mean depends on absolute register, so transposing a piece moves
    that feature (and rotates the pitch-class histogram), nothing else.
    An empty score gives all zeros.
    """
    tracks = [t for t in score.tracks if not t.is_drum and t.notes]
    out = np.zeros(NUM_FEATURES, dtype=np.float64)
    if not tracks:
        return out
    notes = [n for t in tracks for n in t.notes]
    pitches = np.array([n.pitch for n in notes], dtype=np.float64)
    starts = np.array([n.start for n in notes], dtype=np.int64)
    ends = np.array([n.end for n in notes], dtype=np.int64)

    pch = np.zeros(12)
    np.add.at(pch, pitches.astype(np.int64) % 12, (ends - starts).astype(np.float64))

    ivh = np.zeros(2 * INTERVAL_RANGE + 1)
    for t in tracks:
        top: dict[int, int] = {}
        for n in t.notes:
            top[n.start] = max(top.get(n.start, 0), n.pitch)
        line = np.array([top[s] for s in sorted(top)], dtype=np.int64)
        if len(line) > 1:
            iv = np.clip(np.diff(line), -INTERVAL_RANGE, INTERVAL_RANGE) + INTERVAL_RANGE
            np.add.at(ivh, iv, 1.0)

    ioih = np.zeros(len(IOI_BINS))
    onsets = np.unique(starts)
    if len(onsets) > 1:
        ioi = np.diff(onsets).astype(np.float64) * 4.0 / score.steps_per_quarter
        ioi = np.minimum(ioi, IOI_BINS[-1])
        idx = np.argmin(np.abs(ioi[:, None] - np.array(IOI_BINS, dtype=np.float64)[None, :]), axis=1)
        np.add.at(ioih, idx, 1.0)

    total = int(ends.max())
    quarters = total / score.steps_per_quarter
    npq = len(notes) / quarters if quarters > 0 else 0.0
    sounding = np.zeros(total + 1, dtype=np.int64)
    np.add.at(sounding, starts, 1)
    np.add.at(sounding, ends, -1)
    sounding = np.cumsum(sounding)[:total]
    active = sounding[sounding > 0]
    poly = float(active.mean()) if active.size else 0.0

    return np.concatenate([
        _normalized(pch), _normalized(ivh), _normalized(ioih),
        [npq, poly, pitches.mean() / 128.0, pitches.std() / 128.0],
    ])


def features_matrix(scores: Sequence[Score]) -> np.ndarray:
    """Stack :func:`style_features` rows; shape ``(len(scores), NUM_FEATURES)``."""
    if not scores:
        return np.zeros((0, NUM_FEATURES))
    return np.stack([style_features(s) for s in scores])


class StyleClassifier:
    """Multinomial logistic regression on standardized features.

    Standardization (mean/std of the training data; constant features get std 1)
    makes the single L2 strength mean the same for every feature. The bias is not
    penalized.
    """

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.mean = np.zeros(0)
        self.std = np.ones(0)
        self.weights = np.zeros((0, 0))  # (num_features, num_classes)
        self.bias = np.zeros(0)

    def fit(self, features: np.ndarray, labels: Sequence[str], l2: float = 1e-2,
            max_iter: int = 500) -> StyleClassifier:
        """Minimize mean cross-entropy + ``l2/2 * ||W||^2`` with full-batch L-BFGS (float64)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(labels) or x.shape[0] == 0:
            raise ValueError(f"features {x.shape} do not match {len(labels)} labels")
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            raise ValueError(f"need at least two classes to classify, got {self.classes}")
        index = {c: i for i, c in enumerate(self.classes)}
        y = torch.tensor([index[c] for c in labels], dtype=torch.long)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)
        xt = torch.from_numpy((x - self.mean) / self.std)
        w = torch.zeros(x.shape[1], len(self.classes), dtype=torch.float64, requires_grad=True)
        b = torch.zeros(len(self.classes), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                                tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xt @ w + b, y) + 0.5 * l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.weights = w.detach().numpy().copy()
        self.bias = b.detach().numpy().copy()
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, len(classes))``, columns in ``classes`` order."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        logits = ((x - self.mean) / self.std) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        x = np.asarray(features, dtype=np.float64)
        if x.size == 0:
            return []
        return [self.classes[i] for i in self.predict_proba(x).argmax(axis=1)]

    def to_dict(self) -> dict:
        """JSON-ready parameters (plain lists); :meth:`from_dict` restores them exactly."""
        return {"classes": list(self.classes), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> StyleClassifier:
        c = cls()
        c.classes = list(d["classes"])
        c.mean = np.array(d["mean"], dtype=np.float64)
        c.std = np.array(d["std"], dtype=np.float64)
        c.weights = np.array(d["weights"], dtype=np.float64).reshape(len(c.mean), len(c.classes))
        c.bias = np.array(d["bias"], dtype=np.float64)
        return c


def _evaluate(classifier: StyleClassifier, scores_by_style: dict[str, list[Score]]) -> dict:
    """Accuracy overall and per true style, plus ``confusion[true][predicted]`` counts."""
    confusion = {s: {c: 0 for c in classifier.classes} for s in scores_by_style}
    per_style: dict[str, float | None] = {}
    correct = total = 0
    for style, scores in scores_by_style.items():
        preds = classifier.predict(features_matrix(scores))
        for p in preds:
            confusion[style][p] += 1
        hits = sum(p == style for p in preds)
        per_style[style] = hits / len(preds) if preds else None
        correct += hits
        total += len(preds)
    return {"accuracy": correct / total if total else None, "num_pieces": total,
            "per_style": per_style, "confusion": confusion}


def train_style_classifier(scores_by_style: dict[str, list[Score]],
                           l2: float = 1e-2) -> tuple[StyleClassifier, dict]:
    """Fit on every piece whose ``meta['split']`` is ``'train'``; report on ``valid`` and ``test``.

    The report holds ``counts[style][split]``, ``train`` / ``valid`` / ``test`` blocks
    (see :func:`_evaluate`; a style without pieces in a split gets accuracy ``None``)
    and ``notes``: human-readable caveats such as a style with no test pieces.
    Styles with no training pieces cannot be learned: they are left out of the
    classifier's classes and noted; fewer than two trainable styles raises ValueError.
    """
    def split_of(s: Score) -> str:
        return str(s.meta.get("split", "unknown"))

    counts = {style: dict(Counter(split_of(s) for s in scores)) for style, scores in scores_by_style.items()}
    notes: list[str] = []
    train_x, train_y = [], []
    for style, scores in scores_by_style.items():
        tr = [s for s in scores if split_of(s) == "train"]
        if not tr:
            notes.append(f"style {style!r} has no train pieces; it cannot be predicted")
        train_x.extend(style_features(s) for s in tr)
        train_y.extend([style] * len(tr))
    if len(set(train_y)) < 2:
        raise ValueError(f"need train pieces of at least two styles; counts per split: {counts}")
    classifier = StyleClassifier().fit(np.stack(train_x), train_y, l2=l2)

    report: dict = {"classes": list(classifier.classes), "counts": counts, "l2": l2}
    for split in ("train", "valid", "test"):
        subset = {style: [s for s in scores if split_of(s) == split]
                  for style, scores in scores_by_style.items()}
        for style, scores in subset.items():
            if not scores and split != "train":
                notes.append(f"style {style!r} has no {split} pieces; its {split} accuracy is None")
        report[split] = _evaluate(classifier, subset)
    report["notes"] = notes
    return classifier, report


def style_adherence(classifier: StyleClassifier, samples_by_style: dict[str, list[Score]]) -> dict:
    """Per conditioned style S: the share of its samples the classifier labels S.

    Returns ``{"overall": share or None, "num_samples": n, "per_style": {S: {"share",
    "num_samples", "predicted": {label: count}}}, "notes": [...]}``. A style with no
    samples has share ``None``; a style the classifier never learned scores 0 (noted).
    Compare against the classifier's held-out accuracy on real pieces, its ceiling.
    """
    per_style: dict[str, dict] = {}
    notes: list[str] = []
    hits_all = n_all = 0
    for style, samples in samples_by_style.items():
        preds = classifier.predict(features_matrix(samples))
        hits = sum(p == style for p in preds)
        if style not in classifier.classes:
            notes.append(f"style {style!r} is not among the classifier's classes {classifier.classes}")
        if not preds:
            notes.append(f"style {style!r} has no samples")
        per_style[style] = {"share": hits / len(preds) if preds else None, "num_samples": len(preds),
                            "predicted": dict(Counter(preds))}
        hits_all += hits
        n_all += len(preds)
    return {"overall": hits_all / n_all if n_all else None, "num_samples": n_all,
            "per_style": per_style, "notes": notes}
