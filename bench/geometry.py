"""Validation table for the face geometry (docs/geometry.md): 68-point error, pose checks, measure AUCs,
the mesh's cost per face against the expression model's in the same process, and whether aligning
the expression model's crops on the mesh instead of the detector's 5 points changes its accuracy.

    python bench/geometry.py              # every section
    python bench/geometry.py alignment    # only the mesh-alignment comparison
    python bench/geometry.py stage        # where the geometry stage's time goes per face, on real frames
    python bench/geometry.py int8 CARD    # the float mesh against another mesh card (e.g. an int8 one
                                          # from scripts/quantize_face_mesh.py), side by side
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mien.detection import FaceDetector  # noqa: E402
from mien.expression import ExpressionModel  # noqa: E402
from mien.faces import Faces  # noqa: E402
from mien.geometry import FaceMesh, geometry_measures, head_pose  # noqa: E402
from mien.geometry.pose import _FLIP, STABLE_POINTS, canonical_face, fit_similarity, stable_face_frame  # noqa: E402
from mien.geometry.stage import measure_faces  # noqa: E402
from mien.geometry.stills import largest_face_geometry  # noqa: E402
from mien.geometry.validation import ibug68_error, measure_aucs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rotated(img: np.ndarray, angle: float) -> np.ndarray:
    h, w = img.shape[:2]
    pad = cv2.copyMakeBorder(img, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
    m = cv2.getRotationMatrix2D((pad.shape[1] / 2, pad.shape[0] / 2), angle, 1.0)
    return cv2.warpAffine(pad, m, (pad.shape[1], pad.shape[0]), borderMode=cv2.BORDER_REPLICATE)


#: Mesh points standing in for the detector's 5 (image-left eye, image-right eye, nose tip, image-left
#: and image-right mouth corner): each eye's centre as the mean of its corners and mid-lids.
MESH_FIVE: tuple[tuple[int, ...], ...] = ((33, 133, 159, 145), (263, 362, 386, 374), (1,), (61,), (291,))


def _largest_face(det: FaceDetector, mesh: FaceMesh, img: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The detector's 5 points (5, 2) and the mesh (468, 3) of the image's largest face."""
    d = det.detect(img)
    if len(d) == 0:
        return None
    j = int(np.argmax(np.prod(d.xyxy[:, 2:] - d.xyxy[:, :2], axis=1)))
    return d.landmarks[j], mesh.run(img, d.xyxy[j:j + 1], d.landmarks[j:j + 1]).points[0]


def _mesh_five(points: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """5 points (5, 2) from a mesh (468, 3): :data:`MESH_FIVE`, each moved by its calibrated mean offset
    (``offsets`` (5, 3), in the canonical face's frame and units) when given."""
    five = np.stack([points[list(idx)].mean(0) for idx in MESH_FIVE])
    if offsets is None:
        return five[:, :2]
    rot, scale, _ = _stable_fit(points)
    return five[:, :2] + (_FLIP * (scale * offsets @ rot.T))[:, :2]


def _stable_fit(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    idx = list(STABLE_POINTS)
    rot, scale, t = fit_similarity(canonical_face().vertices[idx], points[None, idx] * _FLIP, np.ones(len(idx)))
    return rot[0], float(scale[0]), t[0]


def mesh_alignment(det: FaceDetector, mesh: FaceMesh) -> None:
    """Balanced accuracy of the shipped expression model on two validation folds (mien's subject folds;
    the model was trained on the other folds of these sets) with crops aligned on the detector's 5
    points (as trained and as the engine runs), on 5 points taken from the mesh, and on those mesh points
    moved by their mean offset to the detector's points (measured on the sets' training folds, in the
    head's frame), which removes the framing difference but not the points' own behaviour."""
    from mien.alignment import align_faces
    from mien.audit.metrics import balanced_accuracy, confusion_matrix
    from mien.labels import EXPRESSIONS
    from mien.training.expressions import SOURCES, read_labels, split_of

    model = ExpressionModel.load()
    sets = ("taiwanese_chen2013", "london_face_research_lab")
    labelled = {name: read_labels(SHARED / "expressions" / name) for name in sets}
    gaps = []
    for name, ls in labelled.items():
        for k in np.flatnonzero(~split_of(ls, SOURCES[name])):
            found = _largest_face(det, mesh, cv2.imread(str(ls.root / ls.paths[k])))
            if found is None:
                continue
            lm, pts = found
            rot, scale, _ = _stable_fit(pts)
            five = np.stack([pts[list(idx)].mean(0) for idx in MESH_FIVE])
            diff = np.concatenate([lm - five[:, :2], np.zeros((5, 1))], axis=1) * _FLIP
            gaps.append(diff @ rot / scale)  # R^T d / s, in the canonical face's frame
    offsets = np.mean(gaps, axis=0)
    print("\n## Expression model: crops aligned on the detector's 5 points vs on the mesh's\n")
    print("Validation folds (fold 0 of mien's subject folds; the model trained on the other folds). Mesh points: "
          f"{', '.join('mean of ' + str(p) if len(p) > 1 else str(p[0]) for p in MESH_FIVE)}; calibrated: each moved "
          f"by its mean offset to the detector's point over {len(gaps)} training-fold faces of both sets "
          f"(|offset| {', '.join(f'{v:.2f}' for v in np.linalg.norm(offsets, axis=1))} cm).\n")
    print("| set | faces | balanced accuracy, detector's 5 points | mesh's 5 points | mesh's, calibrated | "
          "same prediction (mesh / calibrated) |\n|---|---|---|---|---|---|")
    for name in sets:
        ls = labelled[name]
        truth, preds = [], []
        for k in np.flatnonzero(split_of(ls, SOURCES[name])):
            img = cv2.imread(str(ls.root / ls.paths[k]))
            found = _largest_face(det, mesh, img)
            if found is None:
                continue
            lm, pts = found
            fives = np.stack([lm, _mesh_five(pts), _mesh_five(pts, offsets)])
            truth.append(int(ls.labels[k]))
            preds.append(model.predict_proba(align_faces(img, fives, model.input_size, model.template)).argmax(1))
        t, p = np.array(truth), np.array(preds)
        n = len(EXPRESSIONS)
        acc = [balanced_accuracy(confusion_matrix(t, p[:, i], n)) for i in range(3)]
        print(f"| {name} | {len(t)} | {acc[0]:.3f} | {acc[1]:.3f} | {acc[2]:.3f} | "
              f"{(p[:, 1] == p[:, 0]).mean():.0%} / {(p[:, 2] == p[:, 0]).mean():.0%} |")


def compare_meshes(det: FaceDetector, mesh: FaceMesh, other: FaceMesh) -> None:
    """The shipped mesh and ``other`` side by side in one process: 68-point NME, pose and measure
    differences and measure AUCs on the validation sets, and ms per face at batch 1 and 4."""
    a, b = mesh.card["name"], other.card["name"]
    print(f"## {a} (float) vs {b}\n")
    print("| file | faces | found | NME mean float | NME mean other | NME median float | NME median other |")
    print("|---|---|---|---|---|---|---|")
    for name in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        xml = SHARED / "face_detection" / "dlib_faces" / name
        e, o = ibug68_error(xml, det, mesh), ibug68_error(xml, det, other)
        print(f"| {name} | {e.faces} | {e.found}/{o.found} | {e.nme_mean:.4f} | {o.nme_mean:.4f} | "
              f"{e.nme_median:.4f} | {o.nme_median:.4f} |")
    import csv

    root = SHARED / "expressions" / "taiwanese_chen2013"
    with (root / "labels.csv").open() as f:
        paths = [r["path"] for r in csv.DictReader(f)][::4]
    diffs: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": []}
    for p in paths:
        img = cv2.imread(str(root / p))
        d = det.detect(img)
        if len(d) == 0:
            continue
        pf, po = head_pose(mesh.run(img, d.xyxy, d.landmarks).points), head_pose(other.run(img, d.xyxy, d.landmarks).points)
        for k in diffs:
            diffs[k].extend(np.abs(getattr(pf, f"{k}_deg") - getattr(po, f"{k}_deg")).tolist())
    print(f"\nPose, |float - other| over {len(diffs['yaw'])} faces (every 4th Taiwanese image): " + "; ".join(
        f"{k} mean {np.mean(v):.2f}°, max {np.max(v):.2f}°" for k, v in diffs.items()))
    print("\n| set | part | expression vs neutral | measure | n | AUC float | AUC other |\n|---|---|---|---|---|---|---|")
    for r, s in zip(measure_aucs(SHARED / "expressions", det, mesh), measure_aucs(SHARED / "expressions", det, other),
                    strict=True):
        print(f"| {r['set']} | {r['part']} | {r['expression']} | {r['measure']} | "
              f"{r['n_expression']}/{r['n_neutral']} | {r['auc']:.3f} | {s['auc']:.3f} |")
    img = cv2.imread(str(root / paths[0]))
    d = det.detect(img)
    print()
    for n in (1, 4):
        boxes, lms = np.repeat(d.xyxy[:1], n, 0), np.repeat(d.landmarks[:1], n, 0)
        times = {}
        for net in (mesh, other, mesh, other):  # interleaved, each measured twice, the faster kept
            net.run(img, boxes, lms)
            t0 = time.perf_counter()
            for _ in range(50):
                net.run(img, boxes, lms)
            ms = 1e3 * (time.perf_counter() - t0) / 50 / n
            times[net.card["name"]] = min(ms, times.get(net.card["name"], ms))
        print(f"- {n} face(s) per batch, mesh.run ms/face: float {times[a]:.2f}, other {times[b]:.2f} "
              f"(other takes {times[b] / times[a]:.2f}x the float's time)")


def stage_profile(det: FaceDetector, mesh: FaceMesh) -> None:
    """Per face, one thread, same process: each step of the geometry stage on real frames with 1 face
    (WolfgangLanger) and with several (Hamilton), the crops built both ways (3-channel warp from the
    frame, 4-channel warp from a converted frame; the same values) and the network run on all the
    frame's faces in one batch and one face a call (:data:`mien.geometry.mesh.NETWORK_BATCH`)."""
    import av

    from mien.geometry import mesh as mesh_module
    from mien.geometry.mesh import back_project, crop_transforms, crops_for

    def fastest(fns: dict, rounds: int = 5, repeats: int = 20) -> dict[str, float]:
        """ms per call of each function, interleaved round by round (the load changes), the fastest round."""
        best = {k: float("inf") for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                fn()
                t0 = time.perf_counter()
                for _ in range(repeats):
                    fn()
                best[k] = min(best[k], (time.perf_counter() - t0) * 1e3 / repeats)
        return best

    print("| clip | faces in the frame | crops (3-ch warp) | crops (4-ch frame) | network, one batch | network, one by one "
          "| back-projection | pose fit | measure frame | measures | whole stage |\n|---|---|---|---|---|---|---|---|---|---|---|")
    default = mesh_module.FOUR_CHANNEL_PIXELS_PER_FACE
    for clip, want in (("WolfgangLanger_Pexels.mp4", 1), ("short_hamilton_clip.mp4", 4), ("short_hamilton_clip.mp4", 6)):
        with av.open(str(SHARED / "videos" / clip)) as c:
            for vf in c.decode(video=0):
                img = vf.to_ndarray(format="bgr24")
                d = det.detect(img)
                if len(d) >= want:
                    break
        n = len(d)
        m = crop_transforms(d.xyxy, d.landmarks)

        def crops_with(pixels_per_face: int) -> np.ndarray:
            mesh_module.FOUR_CHANNEL_PIXELS_PER_FACE = pixels_per_face
            try:
                return crops_for(img, m)
            finally:
                mesh_module.FOUR_CHANNEL_PIXELS_PER_FACE = default

        crops = crops_for(img, m)
        raw, _ = mesh.run_crops(crops)
        pts = back_project(raw.astype(np.float64), m).astype(np.float32)
        faces = Faces(d.xyxy, d.score, d.landmarks, track_id=list(range(n)))
        t = fastest({
            "three": lambda: crops_with(0), "four": lambda: crops_with(10**12),
            "batch": lambda: mesh.session.run(None, {"input": crops}), "single": lambda: mesh.run_crops(crops),
            "back": lambda: back_project(raw.astype(np.float64), m).astype(np.float32),
            "pose": lambda: head_pose(pts), "frame": lambda: stable_face_frame(pts),
            "frame+measures": lambda: geometry_measures(stable_face_frame(pts)),
            "stage": lambda: measure_faces(mesh, img, faces),
        })
        t["measures"] = t.pop("frame+measures") - t["frame"]
        steps = [t[k] for k in ("three", "four", "batch", "single", "back", "pose", "frame", "measures", "stage")]
        print(f"| {clip} | {n} | " + " | ".join(f"{v / n:.3f}" for v in steps) + " |")
    print("\n(ms per face; each the fastest of 5 interleaved rounds of 20; the whole stage uses the engine's choices)")

    # the whole stage over a clip's frames, as before these two cuts (one batch, 3-channel warp) and now
    for clip in ("WolfgangLanger_Pexels.mp4", "short_hamilton_clip.mp4"):
        frames = []
        with av.open(str(SHARED / "videos" / clip)) as c:
            for i, vf in enumerate(c.decode(video=0)):
                if i % 5 == 0:
                    img = vf.to_ndarray(format="bgr24")
                    d = det.detect(img)
                    if len(d):
                        frames.append((img, Faces(d.xyxy, d.score, d.landmarks, track_id=list(range(len(d))))))
        n_faces = sum(len(f) for _, f in frames)
        batch = mesh_module.NETWORK_BATCH

        def stage_as(before: bool) -> None:
            mesh_module.NETWORK_BATCH = 10**6 if before else batch
            mesh_module.FOUR_CHANNEL_PIXELS_PER_FACE = 0 if before else default
            try:
                for img, faces in frames:
                    measure_faces(mesh, img, faces)
            finally:
                mesh_module.NETWORK_BATCH, mesh_module.FOUR_CHANNEL_PIXELS_PER_FACE = batch, default

        t = fastest({"before": lambda: stage_as(True), "now": lambda: stage_as(False)}, rounds=4, repeats=1)
        print(f"- {clip}, every 5th frame ({len(frames)} frames, {n_faces} faces): whole stage {t['before'] / n_faces:.2f} "
              f"ms/face before (one batch, 3-channel warp), {t['now'] / n_faces:.2f} now "
              f"(now takes {t['now'] / t['before']:.2f}x the time)")


def main() -> int:
    if not SHARED.is_dir():
        sys.exit(f"bench: {SHARED} not found; the geometry bench needs ../shared/data beside the checkout")
    det, mesh = FaceDetector(), FaceMesh.load()
    if sys.argv[1:] == ["alignment"]:
        mesh_alignment(det, mesh)
        return 0
    if sys.argv[1:] == ["stage"]:
        stage_profile(det, mesh)
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "int8":
        compare_meshes(det, mesh, FaceMesh.load(sys.argv[2]))
        return 0
    print("## 68-point subset vs dlib annotations (NME: mean error / outer-eye-corner distance)\n")
    print("| file | faces | found | NME mean | NME median |\n|---|---|---|---|---|")
    for name in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        e = ibug68_error(SHARED / "face_detection" / "dlib_faces" / name, det, mesh)
        print(f"| {name} | {e.faces} | {e.found} | {e.nme_mean:.4f} | {e.nme_median:.4f} |")

    print("\n## Pose on real faces (Taiwanese neutral, first 20 images)\n")
    import csv

    root = SHARED / "expressions" / "taiwanese_chen2013"
    with (root / "labels.csv").open() as f:
        paths = [r["path"] for r in csv.DictReader(f) if r["label"] == "neutral"][:20]
    roll_err, flip_yaw, flip_roll = [], [], []
    for p in paths:
        img = cv2.imread(str(root / p))
        ref = largest_face_geometry(_rotated(img, 0), det, mesh)
        if ref is None:
            continue
        for angle in (-30, -15, 15, 30):
            g = largest_face_geometry(_rotated(img, angle), det, mesh)
            if g is not None:
                roll_err.append(abs(g.pose.roll_deg[0] - ref.pose.roll_deg[0] + angle))
        fl = largest_face_geometry(cv2.flip(_rotated(img, 0), 1), det, mesh)
        if fl is not None:
            flip_yaw.append(abs(ref.pose.yaw_deg[0] + fl.pose.yaw_deg[0]))
            flip_roll.append(abs(ref.pose.roll_deg[0] + fl.pose.roll_deg[0]))
    r = np.array(roll_err)
    print(f"- in-plane rotation by ±15°, ±30° ({len(r)} cases): roll error mean {r.mean():.2f}°, "
          f"max {r.max():.2f}°")
    print(f"- horizontal flip ({len(flip_yaw)} faces): |yaw + yaw_flipped| mean {np.mean(flip_yaw):.2f}°, max "
          f"{np.max(flip_yaw):.2f}°; |roll + roll_flipped| mean {np.mean(flip_roll):.2f}°, max {np.max(flip_roll):.2f}°")

    print("\n## Measures: AUC for the expression each should follow, against the set's neutral faces\n")
    print("Taiwanese: training folds (where definitions are chosen) and validation fold 0 (held out, as "
          "are London and Yale).\n")
    print("AUC: each expression photo against every neutral photo of the set (part). Against own neutral: "
          "each against the same person's neutral photos, pooled over the pairs (what a track's `geo_*_delta` "
          "measures: the face against its own rest), 95% interval from resampling people.\n")
    print("| set | part | expression vs neutral | measure | n | AUC | people / pairs | AUC against own neutral |\n"
          "|---|---|---|---|---|---|---|---|")
    for row in measure_aucs(SHARED / "expressions", det, mesh):
        lo, hi = row["auc_own_neutral_ci"]
        print(f"| {row['set']} | {row['part']} | {row['expression']} | {row['measure']} | "
              f"{row['n_expression']}/{row['n_neutral']} | {row['auc']:.3f} | {row['n_subjects']} / {row['n_pairs']} | "
              f"{row['auc_own_neutral']:.3f} [{lo:.3f}, {hi:.3f}] |")

    print("\n## The two pose-normalised measures against their previous definitions\n")
    print("| set | part | expression vs neutral | measure | AUC before | AUC now |\n|---|---|---|---|---|---|")
    compared = (("taiwanese_chen2013", "surprise", "geo_brow_raise"), ("yale_faces", "surprise", "geo_brow_raise"),
                ("taiwanese_chen2013", "happiness", "geo_lip_corner_pull"),
                ("london_face_research_lab", "happiness", "geo_lip_corner_pull"),
                ("yale_faces", "happiness", "geo_lip_corner_pull"))
    now = measure_aucs(SHARED / "expressions", det, mesh, compared)
    before = measure_aucs(SHARED / "expressions", det, mesh,
                          tuple((s, e, f"before:{m}") for s, e, m in compared))
    for a, b in zip(before, now, strict=True):
        print(f"| {b['set']} | {b['part']} | {b['expression']} | {b['measure']} | {a['auc']:.3f} | {b['auc']:.3f} |")

    print("\n## short_hamilton_clip.mp4: faces abstaining as `profile`\n")
    import mien

    clip = SHARED / "videos" / "short_hamilton_clip.mp4"
    counts = {}
    for geometry in (False, True):
        t = mien.analyze(str(clip), geometry=geometry).table
        counts[geometry] = int(t["abstain_reason"].str.contains("profile").sum())
        if geometry:
            low = float((t["mesh_score"] < 0.5).mean())
    print(f"- {len(t)} face rows: {counts[False]} with the 5-point yaw proxy (--no-geometry), {counts[True]} with "
          f"the mesh's yaw where mesh_score >= 0.5 ({low:.0%} of rows below, where the proxy still gates)")

    print("\n## Cost per face (one thread, same process)\n")
    img = cv2.imread(str(root / paths[0]))
    d = det.detect(img)
    model = ExpressionModel.load()
    from mien.alignment import align_faces

    crops = align_faces(img, d.landmarks, model.input_size)
    for n in (1, 4):
        boxes, lms = np.repeat(d.xyxy[:1], n, 0), np.repeat(d.landmarks[:1], n, 0)
        mesh.run(img, boxes, lms)
        model.predict_logits(np.repeat(crops[:1], n, 0))
        t0 = time.perf_counter()
        for _ in range(50):
            mesh.run(img, boxes, lms)
        t1 = time.perf_counter()
        for _ in range(50):
            model.predict_logits(np.repeat(crops[:1], n, 0))
        t2 = time.perf_counter()
        print(f"- {n} face(s) per batch: mesh (crop + network + back-projection) {1e3 * (t1 - t0) / 50 / n:.2f} ms/face, "
              f"expression model {1e3 * (t2 - t1) / 50 / n:.2f} ms/face (ratio {(t1 - t0) / (t2 - t1):.2f})")
        faces = Faces(boxes, np.full(n, 0.9, np.float32), lms, track_id=list(range(n)))
        points = mesh.run(img, boxes, lms).points
        t0 = time.perf_counter()
        for _ in range(50):
            pose = head_pose(points)
            geometry_measures(stable_face_frame(points))
        t1 = time.perf_counter()
        for _ in range(50):
            measure_faces(mesh, img, faces)
        t2 = time.perf_counter()
        print(f"  the whole geometry stage {1e3 * (t2 - t1) / 50 / n:.2f} ms/face, of which pose fit, measure frame "
              f"and measures {1e3 * (t1 - t0) / 50 / n:.3f} ms/face ({(t1 - t0) / (t2 - t1):.0%}; "
              f"pose yaw {pose.yaw_deg[0]:.1f}°)")
    mesh_alignment(det, mesh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
