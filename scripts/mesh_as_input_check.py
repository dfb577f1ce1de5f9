"""Does the face mesh pay as an extra input to the expression model? (issue #18, "Done when")

    python scripts/mesh_as_input_check.py extract   # mesh of every image once (~7 min), runs/expression_mesh/
    python scripts/mesh_as_input_check.py fit       # the table in docs/geometry.md
    python scripts/mesh_as_input_check.py average   # averaging 1.2, 2.0 and the shipped network instead

``extract`` runs every image of FER+ and of the posed sets through the engine's still-image path
(:func:`mien.geometry.stills.largest_face_geometry`: the largest detected face, its mesh, put in the
stable face frame the ``geo_*`` measures use, so position, size and head turn are gone). FER+'s
48-px images are upscaled to 192 px first, so the detector finds them (99.5% are found).

``fit`` trains multinomial logistic heads (L-BFGS, soft labels, each source weighted by its share of
the ``mix`` preset's epochs) on the training folds and scores balanced accuracy on the validation
folds (a face the detector or the mesh missed counts as an error):

* *mesh alone*: the first k principal components of the 1,404 mesh coordinates;
* *on a network that never saw the posed sets* (FER+-only 1.2, ``runs/model_v1.2``, see
  docs/training.md): its logits times a fitted scale plus a bias ("recalibrated"), and the same plus
  the mesh components: what the mesh adds, with no leak, to a network's view of new faces;
* *on the shipped network*: the same two heads. The shipped network was fine-tuned on these
  training folds, so its logits there are more confident than on new faces; a head fitted on them
  learns to trust the network too much. An honest stacked head needs out-of-fold logits (one
  network per fold), which this script does not train.

Training only: needs the ``[train]`` extra (torch) and ``../shared/data``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

RUNS = Path("runs/expression_mesh")
POSED = ("taiwanese_chen2013", "london_face_research_lab", "yale_faces")
SCORED = ("ferplus_public", "taiwanese_chen2013_val", "london_face_research_lab_val", "yale_faces_val")


def extract(out: Path, ferplus: Path) -> None:
    from mien.audit.datasets import ImageReadError, read_image
    from mien.detection import FaceDetector
    from mien.geometry.mesh import FaceMesh
    from mien.geometry.pose import stable_face_frame
    from mien.geometry.stills import largest_face_geometry
    from mien.training.expressions import EXPRESSIONS_ROOT, read_labels

    out.mkdir(parents=True, exist_ok=True)
    detector, mesh = FaceDetector(), FaceMesh.load()

    def run(images) -> dict[str, np.ndarray]:
        n = len(images)
        points, found = np.zeros((n, 468, 3), np.float32), np.zeros(n, bool)
        for i, image in enumerate(images):
            img = image()
            geo = None if img is None else largest_face_geometry(img, detector, mesh)
            if geo is not None:
                points[i], found[i] = stable_face_frame(geo.points[None])[0], True
        return {"points": points, "found": found}

    def still(path: Path):
        def read():
            try:
                return read_image(path)
            except ImageReadError:
                return None
        return read

    for name in POSED:
        t0 = time.time()
        ls = read_labels(EXPRESSIONS_ROOT / name)
        res = run([still(ls.root / p) for p in ls.paths])
        np.savez_compressed(out / f"{name}.npz", paths=np.array(ls.paths), **res)
        print(f"{name}: {int(res['found'].sum())} of {len(ls)} faces, {time.time() - t0:.0f} s", flush=True)
    t0 = time.time()
    with np.load(ferplus) as z:
        pixels = z["pixels"]
    res = run([lambda px=px: cv2.cvtColor(cv2.resize(px, (192, 192), interpolation=cv2.INTER_CUBIC),
                                          cv2.COLOR_GRAY2BGR) for px in pixels])
    np.savez_compressed(out / "ferplus.npz", **res)
    print(f"ferplus: {int(res['found'].sum())} of {len(pixels)} faces, {time.time() - t0:.0f} s", flush=True)


def _sets(runs: Path, ferplus: Path) -> dict[str, dict[str, np.ndarray]]:
    from mien.expression import ExpressionModel
    from mien.training.expressions import load_source
    from mien.training.ferplus import load_ferplus

    v12 = Path("runs/model_v1.2/expression.json")
    if not v12.is_file():
        raise SystemExit("runs/model_v1.2 missing: see docs/training.md (git show 8320618:src/mien/models/...)")
    nets = {"1.2": ExpressionModel.load(v12), "shipped": ExpressionModel.load()}
    fer = load_ferplus(ferplus)
    sets: dict[str, dict[str, np.ndarray]] = {}
    with np.load(runs / "ferplus.npz") as z:
        for name, part in (("ferplus_train", fer.train), ("ferplus_public", fer.public_test)):
            sets[name] = {"points": z["points"][part.index], "ok": z["found"][part.index], "soft": part.soft,
                          "y": part.majority, "crops": part.pixels}
    for name in POSED:
        src = load_source(name)
        with np.load(runs / f"{name}.npz") as z:
            if z["paths"].tolist() != src.labels_set.paths:
                raise SystemExit(f"{runs / name}.npz is from another labels.csv: run extract again")
            points, found = z["points"], z["found"]
        for part, rows in (("train", ~src.val), ("val", src.val)):
            sets[f"{name}_{part}"] = {"points": points[rows], "ok": found[rows] & src.found[rows],
                                      "soft": src.labels_set.soft[rows], "y": src.labels_set.labels[rows],
                                      "crops": src.crops[rows]}
    for d in sets.values():
        for tag, net in nets.items():
            d[f"logits_{tag}"] = np.concatenate([net.predict_network_logits(d["crops"][i:i + 512])
                                                 for i in range(0, len(d["crops"]), 512)])
    return sets


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def fit(runs: Path, ferplus: Path, components: list[int], l2: float) -> None:
    import torch

    from mien.training.expressions import FERPLUS_SHARE, SOURCES

    torch.set_num_threads(1)
    sets = _sets(runs, ferplus)
    share = {"ferplus_train": FERPLUS_SHARE} | {f"{n}_train": SOURCES[n].share for n in POSED}
    x = np.concatenate([sets[n]["points"][sets[n]["ok"]].reshape(-1, 1404) for n in share])
    mean = x.mean(0)
    _u, sv, vt = np.linalg.svd(x - mean, full_matrices=False)

    def head(k: int, logits: str | None, train: dict[str, float]):
        def inputs(d):
            g = ((d["points"].reshape(-1, 1404) - mean) @ vt[:k].T) / (sv[:k] / np.sqrt(len(x)))
            lg = d[f"logits_{logits}"] if logits else np.zeros((len(g), 8))
            return torch.tensor(lg), torch.tensor(g)

        a = torch.ones(1, dtype=torch.float64, requires_grad=logits is not None)
        w = torch.zeros(k, 8, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(8, dtype=torch.float64, requires_grad=True)
        data = {n: (*inputs(sets[n]), torch.tensor(sets[n]["soft"], dtype=torch.float64),
                    torch.tensor(sets[n]["ok"])) for n in train}
        opt = torch.optim.LBFGS([p for p in (a, w, b) if p.requires_grad], max_iter=400,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = l2 * (w ** 2).sum()
            for n, s in train.items():
                lg, g, y, ok = data[n]
                loss = loss - s * (y[ok] * torch.log_softmax(a * lg[ok] + g[ok] @ w + b, 1)).sum(1).mean()
            loss.backward()
            return loss

        opt.step(closure)

        def score(name: str) -> float:
            d = sets[name]
            lg, g = inputs(d)
            out = (a * lg + g @ w + b).detach().numpy()
            present = np.unique(d["y"])
            mask = np.full(8, -np.inf)
            mask[present] = 0  # the argmax over the classes the set holds, as mien evaluate does
            return balanced_accuracy(d["y"], np.where(d["ok"], (out + mask).argmax(1), -1))

        return [score(n) for n in SCORED]

    def network(tag: str) -> list[float]:
        out = []
        for n in SCORED:
            d = sets[n]
            mask = np.full(8, -np.inf)
            mask[np.unique(d["y"])] = 0
            out.append(balanced_accuracy(d["y"], np.where(d["ok"], (d[f"logits_{tag}"] + mask).argmax(1), -1)))
        return out

    posed = {k: v for k, v in share.items() if k != "ferplus_train"}
    rows = [("1.2 network alone", network("1.2")), ("shipped network alone", network("shipped"))]
    for k in components:
        rows.append((f"mesh alone, {k} components", head(k, None, share)))
    rows.append(("1.2 recalibrated on the posed training folds", head(0, "1.2", posed)))
    for k in components:
        rows.append((f"1.2 + mesh ({k} components), posed training folds", head(k, "1.2", posed)))
    rows.append(("shipped recalibrated on the posed training folds (leaks)", head(0, "shipped", posed)))
    for k in components:
        rows.append((f"shipped + mesh ({k} components), posed training folds (leaks)", head(k, "shipped", posed)))
    print("| head | FER+ PublicTest | Taiwanese validation fold | London validation fold | Yale validation fold |")
    print("|---|---:|---:|---:|---:|")
    for name, vals in rows:
        print(f"| {name} | " + " | ".join(f"{100 * v:.1f}" for v in vals) + " |", flush=True)


def average(ferplus: Path) -> None:
    """Log-mean of the temperature-scaled probabilities of 1.2, 2.0 and the shipped network (each
    needs its ``runs/model_v*`` copy, docs/training.md): balanced accuracy / accuracy per set."""
    from mien.expression import ExpressionModel
    from mien.stats import softmax
    from mien.training.expressions import load_source
    from mien.training.ferplus import load_ferplus

    nets = {"1.2": ExpressionModel.load(Path("runs/model_v1.2/expression.json")),
            "2.0": ExpressionModel.load(Path("runs/model_v2.0/expression.json")), "shipped": ExpressionModel.load()}
    fer = load_ferplus(ferplus)
    sets = {"FER+ PublicTest": (fer.public_test.pixels, fer.public_test.majority, np.ones(len(fer.public_test), bool)),
            "FER+ PrivateTest": (fer.private_test.pixels, fer.private_test.majority,
                                 np.ones(len(fer.private_test), bool))}
    for name in POSED:
        src = load_source(name)
        sets[f"{name} validation fold"] = (src.crops[src.val], src.labels_set.labels[src.val], src.found[src.val])
    logp = {k: {t: np.log(softmax(np.concatenate([m.predict_network_logits(x[i:i + 512])
                                                   for i in range(0, len(x), 512)]), m.temperature) + 1e-9)
                for t, m in nets.items()} for k, (x, _y, _ok) in sets.items()}
    print("| networks | " + " | ".join(sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for combo in (("shipped",), ("2.0",), ("1.2",), ("2.0", "shipped"), ("1.2", "shipped"), ("1.2", "2.0", "shipped")):
        cells = []
        for k, (_x, y, ok) in sets.items():
            mask = np.full(8, -np.inf)
            mask[np.unique(y)] = 0
            pred = np.where(ok, (np.mean([logp[k][t] for t in combo], 0) + mask).argmax(1), -1)
            cells.append(f"{100 * balanced_accuracy(y, pred):.1f} / {100 * np.mean(pred == y):.1f}")
        print(f"| {' + '.join(combo)} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("extract", "fit", "average"))
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--ferplus", type=Path, default=Path("../shared/data/ferplus/fer2013_ferplus.npz"))
    ap.add_argument("--components", type=int, nargs="+", default=[20, 160])
    ap.add_argument("--l2", type=float, default=1e-3)
    args = ap.parse_args(argv)
    if args.what == "extract":
        extract(args.runs, args.ferplus)
    elif args.what == "average":
        average(args.ferplus)
    else:
        fit(args.runs, args.ferplus, args.components, args.l2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
