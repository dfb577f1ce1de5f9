"""Expression models: an ONNX network that maps aligned face crops to 8 expression probabilities.

A model is a card (JSON) plus an ONNX file beside it. The card carries everything the engine needs
to feed the network correctly (input size, colour, value range, crop framing as 5-point template),
its softmax temperature, its class-prior adjustment, and the file's SHA-256, which is checked before
the model is used.

Class-prior adjustment. A classifier trained on FER+ has learnt FER+'s class frequencies: neutral
and happiness are 58% of its votes, disgust and contempt under 2% each. Data whose expressions are
more evenly spread (posed sets, balanced study designs) is better served by probabilities under a
flatter prior. Bayes' rule does that with one offset per class (Saerens et al., 2002; logit
adjustment, Menon et al., ICLR 2021)::

    probabilities = softmax((logits - strength * temperature_ref * log(training_prior)) / temperature)

``strength`` 0 keeps FER+'s frequencies; 1 makes the 8 expressions equally likely a priori. The
card's default strength is chosen on FER+ PublicTest (see ``mien.audit.calibrate``), and
``--prior-strength`` changes it per run.
"""
from __future__ import annotations

import json
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mien.errors import InputError, ModelError
from mien.faces import Faces
from mien.labels import EXPRESSIONS
from mien.manifest import file_sha256
from mien.runtime import make_session
from mien.stats import softmax

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime

DEFAULT_CARD = "expression.json"
#: the int8 quantisation of the shipped model, made by scripts/quantize_expression.py
INT8_CARD = "expression_int8.json"
PRECISIONS = ("int8", "float")


def default_card_path() -> Path:
    return Path(str(resources.files("mien") / "models" / DEFAULT_CARD))


def int8_card_path() -> Path | None:
    """The shipped int8 model's card, or None when this installation ships none."""
    path = Path(str(resources.files("mien") / "models" / INT8_CARD))
    return path if path.is_file() else None


class ExpressionModel:
    """An ONNX expression classifier described by a model card.

    ``predict_proba`` takes aligned grayscale crops (n, S, S) uint8 and returns (n, 8) probabilities
    over ``mien.labels.EXPRESSIONS``, temperature-scaled as the card says.
    """

    def __init__(self, card: dict[str, Any], onnx_path: Path, threads: int = 1, device: str = "cpu") -> None:
        self.card = card
        self.onnx_path = onnx_path
        self.threads = threads
        self.device = device
        spec = card["input"]
        self.input_size = int(spec["size"])
        self.input_name = str(spec.get("name", "gray"))
        self.template = np.asarray(spec["landmark_template"], np.float32)
        self.labels: tuple[str, ...] = tuple(card["labels"])
        if self.labels != EXPRESSIONS:
            raise ModelError(
                f"model card {card.get('name')} lists labels {self.labels}; mien needs {EXPRESSIONS}"
            )
        self.temperature = float(card.get("temperature", 1.0))
        self.name = str(card.get("name", onnx_path.stem))
        self.sha256 = str(card["sha256"])
        prior = card.get("prior_adjustment") or {}
        self.prior_strength = float(prior.get("strength", 0.0))
        self.training_prior = (
            np.asarray(prior["training_prior"], np.float64) if "training_prior" in prior else None
        )
        if self.training_prior is not None and (
            self.training_prior.shape != (len(self.labels),) or not (self.training_prior > 0).all()
        ):
            raise ModelError(
                f"model card {self.name}: prior_adjustment.training_prior must hold "
                f"{len(self.labels)} positive shares, got {prior['training_prior']}"
            )
        self.prior_temperature = float(prior.get("temperature", self.temperature))
        self.logit_offset = self.prior_offset(self.prior_strength)
        self._session: onnxruntime.InferenceSession | None = None
        self._lock = threading.Lock()

    def prior_offset(self, strength: float) -> np.ndarray:
        """The per-class offset added to the network's logits for a class-prior ``strength``."""
        if strength == 0:
            return np.zeros(len(self.labels))
        if self.training_prior is None:
            raise ModelError(
                f"model card {self.name} has no prior_adjustment.training_prior; "
                "only --prior-strength 0 works with it"
            )
        return -float(strength) * self.prior_temperature * np.log(self.training_prior)

    @classmethod
    def load(
        cls, card_path: str | Path | None = None, threads: int = 1, precision: str = "float",
        device: str = "cpu",
    ) -> ExpressionModel:
        """Load a model from its card and verify the ONNX SHA-256. With no card: mien's shipped
        model, or with ``precision="int8"`` its int8 quantisation where one ships (its own card
        holds its own audited figures); the float model otherwise."""
        if precision not in PRECISIONS:
            raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if card_path is None and precision == "int8":
            card_path = int8_card_path()
        path = Path(card_path) if card_path is not None else default_card_path()
        if not path.is_file():
            raise ModelError(f"model card {path} not found; pass the path of a model card JSON")
        try:
            card = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"model card {path} is not valid JSON ({exc}); fix or regenerate it")
        if not isinstance(card, dict):
            raise ModelError(f"model card {path} is not a JSON object; fix or regenerate it")
        missing = [k for k in ("file", "sha256", "labels", "input")
                   if not isinstance(card.get(k), (str, list, dict))]
        if missing:
            raise ModelError(f"model card {path} lacks {', '.join(repr(k) for k in missing)}; a card names its "
                             "ONNX \"file\", its \"sha256\", its \"labels\" and \"input\" — fix or regenerate it")
        onnx_path = (path.parent / card["file"]).resolve()
        if not onnx_path.is_file():
            raise ModelError(f"model file {onnx_path} named by card {path} is missing")
        digest = _cached_sha256(str(onnx_path), onnx_path.stat().st_mtime_ns)
        if digest != card["sha256"]:
            raise ModelError(
                f"model file {onnx_path} has SHA-256 {digest} but its card says {card['sha256']}; "
                "the file is corrupt or was replaced: reinstall mien or regenerate the card"
            )
        try:
            return cls(card, onnx_path, threads, device)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"model card {path} is malformed ({type(exc).__name__}: {exc}); fix or regenerate it") from None

    @property
    def session(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._session is None:
                session = make_session(str(self.onnx_path), self.threads, self.device)
                # ONNX Runtime's first runs allocate its buffers (tens of ms): pay that here,
                # where it can overlap start-up, not on a video's first frame
                x = np.zeros((1, 1, self.input_size, self.input_size), np.float32)
                for _ in range(2):
                    session.run(None, {self.input_name: x})
                self._session = session
            return self._session

    def with_temperature(self, temperature: float) -> ExpressionModel:
        card = dict(self.card, temperature=float(temperature))
        if card.get("prior_adjustment"):  # the offset stays what it was
            card["prior_adjustment"] = dict(card["prior_adjustment"], temperature=self.prior_temperature)
        return ExpressionModel(card, self.onnx_path, self.threads, self.device)

    def with_prior_strength(self, strength: float) -> ExpressionModel:
        """The same model with another class-prior strength (0: FER+ frequencies, 1: uniform)."""
        check_prior_strength(strength)
        if strength != 0 and self.training_prior is None:
            self.prior_offset(strength)  # raises the explanatory ModelError
        prior = dict(self.card.get("prior_adjustment") or {})
        prior.update(strength=float(strength), temperature=self.prior_temperature)
        return ExpressionModel(dict(self.card, prior_adjustment=prior), self.onnx_path, self.threads, self.device)

    def predict_logits(self, crops: np.ndarray) -> np.ndarray:
        """Logits (n, 8), before temperature, for aligned uint8 crops (n, S, S): the network's
        output plus :attr:`logit_offset` (the class-prior adjustment)."""
        return self.predict_network_logits(crops) + self.logit_offset

    def predict_network_logits(self, crops: np.ndarray) -> np.ndarray:
        """The network's own logits (n, 8), with no class-prior offset."""
        crops = np.asarray(crops)
        if len(crops) == 0:
            return np.zeros((0, len(self.labels)))
        if crops.shape[1:] != (self.input_size, self.input_size):
            crops = self.prepare_crops(list(crops))
        x = crops.astype(np.float32)[:, None]
        return self.session.run(None, {self.input_name: x})[0].astype(np.float64)

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        return softmax(self.predict_logits(crops), self.temperature)

    def classify(self, faces: Faces, crops: np.ndarray) -> Faces:
        """``faces`` with ``probs`` set for every face that does not abstain (one batch);
        ``crops`` are their aligned crops, in the same order."""
        probs = np.full((len(faces), len(self.labels)), np.nan)
        ok = ~faces.abstain
        if ok.any():
            probs[ok] = self.predict_proba(crops[ok])
        return faces.replace(probs=probs)

    def prepare_crops(self, images: list[np.ndarray]) -> np.ndarray:
        """Resize already-cropped face images (gray or BGR, any size) to the model input."""
        s = self.input_size
        out = np.empty((len(images), s, s), np.uint8)
        for i, im in enumerate(images):
            im = np.asarray(im)
            if im.ndim == 3:
                im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
            if im.dtype != np.uint8:
                im = np.clip(im, 0, 255).astype(np.uint8)
            interp = cv2.INTER_AREA if min(im.shape[:2]) > s else cv2.INTER_LINEAR
            out[i] = cv2.resize(im, (s, s), interpolation=interp)
        return out


def check_prior_strength(strength: float) -> None:
    if not 0.0 <= float(strength) <= 1.0:
        raise InputError(
            f"--prior-strength must be between 0 (FER+ class frequencies) and 1 (all expressions "
            f"equally likely), got {strength}"
        )


@lru_cache(maxsize=8)
def _cached_sha256(path: str, mtime_ns: int) -> str:
    return file_sha256(Path(path))
