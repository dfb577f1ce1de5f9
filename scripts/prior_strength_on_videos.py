"""How the class-prior strength changes what mien says about real, unlabelled video.

    python scripts/prior_strength_on_videos.py ../shared/data/videos [--stride 3]
    python scripts/prior_strength_on_videos.py ../shared/data/videos --glob 'RD_*.mp4' --glob 'WDA_*.mp4' \
        --glob 'talking_*.mp4' --model-card runs/model_v1.2/expression.json --strengths 0 0.1 1

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
    ap.add_argument("--glob", action="append", default=None, help="clips to read (default *.mp4); repeatable")
    ap.add_argument("--model-card", type=Path, default=None, help="default: the shipped model")
    ap.add_argument("--strengths", type=float, nargs="*", default=None,
                    help="default: 0, the card's and 1")
    args = ap.parse_args()
    from mien.expression import ExpressionModel

    model = ExpressionModel.load(args.model_card)
    analyzer = Analyzer(AnalysisOptions(stride=args.stride, smoothing_tau_s=0), model=model)
    shipped = analyzer.model
    strengths = sorted(set(args.strengths) if args.strengths is not None else {0.0, shipped.prior_strength, 1.0})
    videos = sorted({v for pattern in (args.glob or ["*.mp4"]) for v in args.folder.glob(pattern)})
    rows = []
    print(f"model {shipped.name} (card strength {shipped.prior_strength})", flush=True)
    for video in videos:
        for strength in strengths:
            analyzer.model = shipped.with_prior_strength(strength)
            faces = analyzer.analyze_source(str(video)).table
            faces = faces[~faces["abstain"]]
            if len(faces) == 0:
                continue
            share = faces["top_label"].value_counts(normalize=True)
            rows.append({"video": video.stem[:24], "strength": strength, "faces": len(faces),
                         **{label[:5]: round(float(share.get(label, 0.0)), 2) for label in EXPRESSIONS}})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    # the share of all faces (every clip pooled) called neutral or surprise, per strength
    pooled = table.assign(neutral_n=table["neutr"] * table["faces"], surprise_n=table["surpr"] * table["faces"])
    pooled = pooled.groupby("strength")[["faces", "neutral_n", "surprise_n"]].sum()
    pooled["neutral"] = (pooled["neutral_n"] / pooled["faces"]).round(3)
    pooled["surprise"] = (pooled["surprise_n"] / pooled["faces"]).round(3)
    print("\nall clips pooled:\n" + pooled[["faces", "neutral", "surprise"]].to_string())


if __name__ == "__main__":
    main()
