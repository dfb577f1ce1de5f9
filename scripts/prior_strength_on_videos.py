"""How the class-prior strength changes what mien says about real, unlabelled video.

    python scripts/prior_strength_on_videos.py ../shared/data/videos [--stride 3]

For every clip: the share of non-abstained faces whose top expression is each label, at strengths
0, the model card's, and 1 (no temporal smoothing, so each frame speaks for itself). Natural video
is mostly neutral and happy faces; a strength that floods it with disgust or contempt would be a
bad default however well it does on balanced sets.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mien.labels import EXPRESSIONS
from mien.pipeline import AnalysisOptions, Analyzer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--stride", type=int, default=3)
    args = ap.parse_args()
    analyzer = Analyzer(AnalysisOptions(stride=args.stride, smoothing_tau_s=0))
    shipped = analyzer.model
    rows = []
    for video in sorted(args.folder.glob("*.mp4")):
        for strength in sorted({0.0, shipped.prior_strength, 1.0}):
            analyzer.model = shipped.with_prior_strength(strength)
            faces = analyzer.analyze_source(str(video)).table
            faces = faces[~faces["abstain"]]
            if len(faces) == 0:
                continue
            share = faces["top_label"].value_counts(normalize=True)
            rows.append({"video": video.stem[:24], "strength": strength, "faces": len(faces),
                         **{label[:5]: round(float(share.get(label, 0.0)), 2) for label in EXPRESSIONS}})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
