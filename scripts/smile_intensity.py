"""How large each smile of a paired set is, and the expression model's happiness recall by group at
matched smile sizes: is an accuracy gap between groups the model's, or the set's?

    mien evaluate ../shared/data/expressions/london_face_research_lab/labels.csv -o runs/audit/london.json
    python scripts/smile_intensity.py runs/audit/london.json --group gender

A smile's size is ``geo_lip_corner_pull`` of the smiling photo minus the same person's neutral photo
(the mesh's measure of AU12 in inter-ocular distances, docs/geometry.md; the same difference a
track's ``geo_lip_corner_pull_delta`` takes against its own rest). The mesh is a different network
from the expression model, so the size is not the model's own reading. For each group (the set's own
annotation column) it prints the smiles' sizes and the model's happiness recall, overall and within
size bands (the bands are the terciles of all smiles' sizes), and a size-matched recall gap: each
group's recall re-weighted to the pooled size distribution over the bands. Items are matched to the
evaluation JSON by file name.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mien.detection import FaceDetector  # noqa: E402
from mien.geometry import FaceMesh  # noqa: E402
from mien.geometry.validation import labelled_measures  # noqa: E402

LONDON = Path(__file__).resolve().parents[2] / "shared" / "data" / "expressions" / "london_face_research_lab"


def smile_sizes(set_dir: Path, measure: str = "geo_lip_corner_pull") -> dict[str, tuple[float, str, dict]]:
    """File name of each smiling photo -> (its measure minus its person's neutral photo's (their
    mean, where there are several), person, row of labels.csv)."""
    with (set_dir / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    labels, cols = labelled_measures(set_dir, FaceDetector(), FaceMesh.load())
    v = cols[measure]
    by_person: dict[str, list[float]] = {}
    for i, r in enumerate(rows):
        if labels[i] == "neutral":
            by_person.setdefault(r["subject"], []).append(float(v[i]))
    neutral = {s: float(np.nanmean(x)) for s, x in by_person.items()}  # the mean where a person has several
    return {Path(r["path"]).name: (float(v[i] - neutral[r["subject"]]), r["subject"], r)
            for i, r in enumerate(rows) if labels[i] == "happiness" and r["subject"] in neutral}


def size_matched(hit: np.ndarray, band: np.ndarray, pooled: np.ndarray) -> float:
    """Recall re-weighted to the pooled share of each size band (bands this group lacks left out)."""
    per_band = np.array([hit[band == b].mean() if (band == b).any() else np.nan for b in range(len(pooled))])
    ok = np.isfinite(per_band)
    return float((per_band[ok] * pooled[ok]).sum() / pooled[ok].sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("evaluation", type=Path, help="JSON written by mien evaluate -o on the set (or a fold of it)")
    ap.add_argument("--set-dir", type=Path, default=LONDON, help="the paired set (default: the London set)")
    ap.add_argument("--group", default="gender", help="the set's annotation column to compare (default gender)")
    args = ap.parse_args()
    ev = json.loads(args.evaluation.read_text())
    names = ev["labels"]
    said = {Path(it["id"]).name: (names[int(np.argmax(it["logits"]))] if it["status"] == "ok" else None)
            for it in ev["items"] if it["label"] == "happiness"}
    sizes = smile_sizes(args.set_dir)
    keys = sorted(set(said) & set(sizes))
    if not keys:
        sys.exit(f"smile_intensity: no smiling photo of {args.evaluation} is in {args.set_dir}/labels.csv with a "
                 "neutral photo of the same person; evaluate that set (or a fold of it)")
    if args.group not in sizes[keys[0]][2]:
        sys.exit(f"smile_intensity: {args.set_dir}/labels.csv has no column {args.group!r} "
                 f"(columns: {', '.join(sizes[keys[0]][2])})")
    size = np.array([sizes[k][0] for k in keys])
    hit = np.array([said[k] == "happiness" for k in keys])
    group = np.array([sizes[k][2][args.group] for k in keys], dtype=object)
    edges = np.quantile(size, [1 / 3, 2 / 3])
    band = np.digitize(size, edges)
    band_names = [f"< {edges[0]:.3f}", f"{edges[0]:.3f}-{edges[1]:.3f}", f">= {edges[1]:.3f}"]
    pooled = np.array([(band == b).mean() for b in range(3)])
    print(f"{len(keys)} smiles of {args.evaluation} matched to {args.set_dir.name}; size = geo_lip_corner_pull, "
          "smiling photo minus the same person's neutral photo (inter-ocular distances)\n")
    print(f"| {args.group} | smiles | median size | recall | " + " | ".join(f"recall, size {n}" for n in band_names)
          + " | size-matched recall |")
    print("|---|---:|---:|---:|" + "---:|" * 4)
    matched = {}
    for g in sorted(set(group.tolist())):
        m = group == g
        cells = [f"{hit[m & (band == b)].mean():.2f} ({(m & (band == b)).sum()})" if (m & (band == b)).any()
                 else "– (0)" for b in range(3)]
        matched[g] = size_matched(hit[m], band[m], pooled)
        print(f"| {g} | {m.sum()} | {np.median(size[m]):.3f} | {hit[m].mean():.2f} | " + " | ".join(cells)
              + f" | {matched[g]:.2f} |")
    big = [g for g in matched if (group == g).sum() >= 10]
    if len(big) >= 2:
        rng = np.random.default_rng(0)
        gaps = []  # resampling smiles (one per person) within each group
        for _ in range(1000):
            r = {g: rng.choice(np.flatnonzero(group == g), (group == g).sum()) for g in big}
            raw_r = [hit[i].mean() for i in r.values()]
            matched_r = [size_matched(hit[i], band[i], pooled) for i in r.values()]
            gaps.append((max(raw_r) - min(raw_r), np.nanmax(matched_r) - np.nanmin(matched_r)))
        lo, hi = 100 * np.nanpercentile(np.array(gaps), [2.5, 97.5], axis=0)
        raw = [hit[group == g].mean() for g in big]
        print(f"\nrecall gap between groups of 10 or more: {100 * (max(raw) - min(raw)):.1f} points "
              f"[{lo[0]:.1f}, {hi[0]:.1f}]; size-matched: "
              f"{100 * (max(matched[g] for g in big) - min(matched[g] for g in big)):.1f} points [{lo[1]:.1f}, {hi[1]:.1f}] "
              "(95% intervals, smiles resampled within each group)")
    miss = ~hit
    if miss.any() and hit.any():
        print(f"missed smiles: {miss.sum()}, median size {np.median(size[miss]):.3f} against {np.median(size[hit]):.3f} "
              f"for the smiles called happiness; {int((size[miss] < np.percentile(size[hit], 5)).sum())} of them below "
              "the 5th percentile of those")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
