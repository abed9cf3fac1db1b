"""mgeval's relative metrics (Yang & Lerch 2018, "On the evaluation of generative models in
music"): per-piece features, the distributions of pairwise feature distances within a set
(intra) and across two sets (inter), and how much the reference's intra-set distribution
overlaps the inter-set one (overlap area, OA; 1 = the samples are as close to the
reference as reference pieces are to each other) and its KL divergence from it.

Features are global (whole piece, not per bar) over every non-drum note of every track.
Deviations from the reference code, each because it made pieces incomparable or a
number undefined:

* times are quantized steps, so note lengths and inter-onset intervals are in quarter
  notes (tempo-free) rather than seconds or MIDI ticks;
* the pitch-class histogram weights notes by duration like mgeval's piano roll, but not
  by velocity;
* both transition matrices and ``avg_pitch_shift`` read notes in onset order, simultaneous
  notes from low to high pitch (a chord C-E-G counts C->E->G), and are normalised by
  their total; a piece with fewer than two notes has an all-zero matrix and shift 0;
* ``avg_IOI`` takes intervals between distinct onset times, so a chord is one onset;
* the whole note of ``note_length_hist`` is always four quarters (mgeval derives it from
  a bar length that its time-signature parsing gets wrong);
* OA and KL integrate the KDEs with the trapezoid rule on a padded grid and renormalise
  them there (mgeval cuts the densities at the samples' min and max, so OA(x, x) < 1, and
  evaluates its KL on two different grids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from scipy.spatial import distance

from tunelab.music.score import Note, Score

# Follows github.com/RichardYang40148/mgeval: mgeval/core.py, mgeval/utils.py, demo.ipynb.

# mgeval's note-length classes (core.note_length_hist) in quarter notes: full, half,
# quarter, 8th, 16th, dotted half/quarter/8th/16th, half/quarter/8th-note triplet.
NOTE_LENGTH_CLASSES = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])
GRID_POINTS = 1000  # mgeval's kl_dist evaluates its densities at 1000 points
GRID_PAD_BANDWIDTHS = 4.0  # the grid reaches 4 bandwidths past the data: tails < 1e-4
# A constant (or one-value) sample has no spread for Scott's rule, and gaussian_kde raises
# on its singular covariance; it gets this bandwidth, in the distances' own units (pitch
# counts, quarter notes, histogram mass), small against any real spread of those.
DEGENERATE_BANDWIDTH = 1e-3
KL_EPSILON = 1e-10  # keeps log(p / q) finite where a density underflows to 0


def _notes(score: Score) -> list[Note]:
    """Every non-drum note, in onset order, simultaneous notes from low to high pitch."""
    notes = [n for t in score.tracks if not t.is_drum for n in t.notes]
    return sorted(notes, key=lambda n: (n.start, n.pitch, n.end))


def _scalar(x: float) -> np.ndarray:
    return np.array([x], dtype=float)


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def total_used_pitch(score: Score) -> np.ndarray:
    """Pitch count: the number of distinct MIDI pitches."""
    return _scalar(len({n.pitch for n in _notes(score)}))


def total_used_note(score: Score) -> np.ndarray:
    """Note count (a rhythm feature: no pitch information)."""
    return _scalar(len(_notes(score)))


def total_pitch_class_histogram(score: Score) -> np.ndarray:
    """Pitch classes C..B weighted by note duration, summing to 1."""
    hist = np.zeros(12)
    for n in _notes(score):
        hist[n.pitch % 12] += n.end - n.start
    return _normalised(hist)


def pitch_class_transition_matrix(score: Score) -> np.ndarray:
    """12x12 counts of pitch class -> pitch class of consecutive notes, summing to 1."""
    notes = _notes(score)
    matrix = np.zeros((12, 12))
    for a, b in zip(notes, notes[1:], strict=False):
        matrix[a.pitch % 12, b.pitch % 12] += 1
    return _normalised(matrix)


def pitch_range(score: Score) -> np.ndarray:
    """Highest minus lowest pitch, in semitones."""
    pitches = [n.pitch for n in _notes(score)]
    return _scalar(max(pitches) - min(pitches) if pitches else 0)


def avg_pitch_shift(score: Score) -> np.ndarray:
    """Mean absolute interval between consecutive notes, in semitones."""
    pitches = np.array([n.pitch for n in _notes(score)], dtype=float)
    return _scalar(np.abs(np.diff(pitches)).mean() if len(pitches) > 1 else 0.0)


def avg_IOI(score: Score) -> np.ndarray:  # mgeval's name, capitals and all
    """Mean interval between consecutive distinct onsets, in quarter notes (beats)."""
    onsets = np.array(sorted({n.start for n in _notes(score)}), dtype=float)
    if len(onsets) < 2:
        return _scalar(0.0)
    return _scalar(np.diff(onsets).mean() / score.steps_per_quarter)


def _length_classes(score: Score) -> list[int]:
    """Each note's nearest length class; ties go to the class listed first (np.argmin)."""
    spq = score.steps_per_quarter
    return [int(np.argmin(np.abs(NOTE_LENGTH_CLASSES - (n.end - n.start) / spq))) for n in _notes(score)]


def note_length_hist(score: Score) -> np.ndarray:
    """How many notes fall in each of the 12 length classes, summing to 1."""
    hist = np.zeros(len(NOTE_LENGTH_CLASSES))
    for c in _length_classes(score):
        hist[c] += 1
    return _normalised(hist)


def note_length_transition_matrix(score: Score) -> np.ndarray:
    """12x12 counts of length class -> length class of consecutive notes, summing to 1."""
    classes = _length_classes(score)
    matrix = np.zeros((len(NOTE_LENGTH_CLASSES),) * 2)
    for a, b in zip(classes, classes[1:], strict=False):
        matrix[a, b] += 1
    return _normalised(matrix)


FEATURES: dict[str, Callable[[Score], np.ndarray]] = {
    "total_used_pitch": total_used_pitch,
    "total_used_note": total_used_note,
    "total_pitch_class_histogram": total_pitch_class_histogram,
    "pitch_class_transition_matrix": pitch_class_transition_matrix,
    "pitch_range": pitch_range,
    "avg_pitch_shift": avg_pitch_shift,
    "avg_IOI": avg_IOI,
    "note_length_hist": note_length_hist,
    "note_length_transition_matrix": note_length_transition_matrix,
}


def _matrix(feats: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([np.asarray(f, dtype=float).ravel() for f in feats])


def intra_set_distances(feats: Sequence[np.ndarray]) -> np.ndarray:
    """Euclidean distance of every unordered pair (i < j) of one set's features."""
    if len(feats) < 2:
        return np.zeros(0)
    return distance.pdist(_matrix(feats))


def inter_set_distances(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """Euclidean distance of every pair (one from each set), row-major over ``a``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0)
    return distance.cdist(_matrix(a), _matrix(b)).ravel()


class _Kde:
    """scipy's Gaussian KDE (Scott's bandwidth), or a fixed narrow one for a sample
    without spread, where gaussian_kde's covariance is singular."""

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=float).ravel()
        if len(x) == 0 or not np.all(np.isfinite(x)):
            raise ValueError(f"a KDE needs finite values; got {len(x)} values")
        self.x = x
        self.lo, self.hi = float(x.min()), float(x.max())
        self.kde: stats.gaussian_kde | None = None
        self.bandwidth = DEGENERATE_BANDWIDTH
        if self.hi - self.lo > 1e-12 * max(1.0, abs(self.lo), abs(self.hi)):
            try:
                self.kde = stats.gaussian_kde(x)
                self.bandwidth = float(np.sqrt(self.kde.covariance[0, 0]))
            except np.linalg.LinAlgError:
                self.kde = None

    def __call__(self, grid: np.ndarray) -> np.ndarray:
        if self.kde is not None:
            return self.kde(grid)
        values, counts = np.unique(self.x, return_counts=True)
        weights = counts / counts.sum()
        return sum(w * stats.norm.pdf(grid, v, self.bandwidth) for v, w in zip(values, weights, strict=True))

    def span(self) -> tuple[float, float]:
        pad = GRID_PAD_BANDWIDTHS * self.bandwidth
        return self.lo - pad, self.hi + pad


def _densities(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both KDEs on one shared grid, each renormalised to integrate to 1 there.

    The grid is the union of GRID_POINTS points over the joint range and GRID_POINTS over
    each sample's own range, all padded by GRID_PAD_BANDWIDTHS bandwidths: a narrow density
    next to a wide one is still resolved, and no mass is cut off at the data's min or max.
    """
    kx, ky = _Kde(x), _Kde(y)
    (xlo, xhi), (ylo, yhi) = kx.span(), ky.span()
    grid = np.unique(np.concatenate([
        np.linspace(min(xlo, ylo), max(xhi, yhi), GRID_POINTS),
        np.linspace(xlo, xhi, GRID_POINTS),
        np.linspace(ylo, yhi, GRID_POINTS),
    ]))
    p, q = kx(grid), ky(grid)
    return grid, p / np.trapezoid(p, grid), q / np.trapezoid(q, grid)


def _oa(grid: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    return float(min(1.0, np.trapezoid(np.minimum(p, q), grid)))


def _kl(grid: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    # trapezoid rounding can leave -1e-17 where p == q: KL is never negative
    return float(max(0.0, np.trapezoid(p * np.log((p + KL_EPSILON) / (q + KL_EPSILON)), grid)))


def overlap_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area under the smaller of the two samples' KDEs: 1 = same distribution, 0 = disjoint."""
    return _oa(*_densities(x, y))


def kl_divergence(x: np.ndarray, y: np.ndarray) -> float:
    """KL(KDE of x || KDE of y) in nats; 0 for identical samples, large for disjoint ones."""
    return _kl(*_densities(x, y))


def _with_notes(scores: Sequence[Score]) -> list[Score]:
    return [s for s in scores if _notes(s)]


def relative_metrics(samples: Sequence[Score], reference: Sequence[Score]) -> dict:
    """mgeval's demo comparison for every feature in :data:`FEATURES`.

    Per feature: OA and KL between the reference's intra-set distances and the
    samples-x-reference inter-set distances, and the mean intra-samples, intra-reference
    and inter distances; then ``mean_oa`` and ``mean_kl`` over features. Pieces without
    (non-drum) notes are skipped; a set left with fewer than two pieces raises ValueError.
    """
    samples, reference = _with_notes(samples), _with_notes(reference)
    if len(samples) < 2 or len(reference) < 2:
        raise ValueError(f"relative metrics need >= 2 pieces with notes in each set; got "
                         f"{len(samples)} samples and {len(reference)} reference pieces")
    out: dict = {}
    for name, feature in FEATURES.items():
        fs, fr = [feature(s) for s in samples], [feature(s) for s in reference]
        intra_s, intra_r = intra_set_distances(fs), intra_set_distances(fr)
        inter = inter_set_distances(fs, fr)
        grid, p, q = _densities(intra_r, inter)
        out[name] = {
            "oa": _oa(grid, p, q),
            "kl": _kl(grid, p, q),
            "intra_samples_mean": float(intra_s.mean()),
            "intra_reference_mean": float(intra_r.mean()),
            "inter_mean": float(inter.mean()),
        }
    out["mean_oa"] = float(np.mean([out[f]["oa"] for f in FEATURES]))
    out["mean_kl"] = float(np.mean([out[f]["kl"] for f in FEATURES]))
    out["samples"] = len(samples)
    out["reference"] = len(reference)
    return out
