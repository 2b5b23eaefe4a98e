"""Check an exported artifact against the PyTorch student it came from, and score it.

Every artifact that can run here is run by its own runtime on a fixed validation sample (the
first COMPARE_SAMPLES samples of the val split) and compared with the student (max abs logit
difference, argmax agreement; for sentence embeddings the lowest cosine to the student's), then
scored on the test split (accuracy; R² for regression; mean cosine to the teacher's embedding).
What "close enough" means depends on the precision: fp32 differs only by summation order; fp16
and int8 are judged by argmax agreement and accuracy, or for regression by the largest output
difference relative to the outputs' spread and by R². An int8 artifact is compared with the
fake-quantized student it was exported from (the model that ships), so the int8 rounding itself
is not counted against it:
only integer kernels' rounding, a few output quantization steps. Argmax agreement is then
judged on the decisive samples: those whose top two logits (fake-quantized student) are more
than TIE_STEPS output steps apart; a near tie may flip on one step of rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgedistill.inputs import as_array, random_input
from edgedistill.ort import onnx_session
from edgedistill.quant.fake import float_model, is_quantized, output_step
from edgedistill.tasks.data import iter_batches, task_kind
from edgedistill.tasks.kinds import TASK_KINDS, TaskKind, cosines

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from edgedistill.records.artifact import Artifact

# Tolerance on logits for an fp32 export: different kernels reorder float sums, nothing more.
# Scaled by the largest |logit| of the student when that is above 1.
FP32_TOLERANCE = 1e-4
COMPARE_SAMPLES = 64  # the fixed validation sample: the first N samples of the val split
FP16_MIN_AGREEMENT = 0.98
FP16_MAX_ACCURACY_DROP = 0.01
INT8_MIN_AGREEMENT = 0.98  # vs the fake-quantized student, not the float one
INT8_MAX_ACCURACY_DROP = 0.02
TIE_STEPS = 4  # int8 kernels' requantization differs from fake quantization by up to ~3 steps
# Regression outputs: largest difference allowed, as a share of the outputs' standard deviation
REGRESSION_SPREAD_SHARE = {"fp16": 0.02, "int8": 0.15}
# Sentence embeddings: the lowest cosine to the student's embedding, per sample
EMBEDDING_MIN_COSINE = {"fp16": 0.999, "int8": 0.98}

# N x C x H x W float32 (or N x L int64 token ids) -> N x K logits
Predict = Callable[["np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Validation:
    """What one check found. `kind` says whether outputs were compared or only the structure."""

    kind: Literal["outputs", "structural"]
    runtime: str
    max_abs_diff: float | None = None
    argmax_agreement: float | None = None
    min_cosine: float | None = None  # sentence embeddings: the lowest cosine to the student's
    # int8: agreement on the samples whose reference top-2 margin exceeds TIE_STEPS steps
    decisive_agreement: float | None = None
    decisive_samples: int | None = None
    accuracy: float | None = None
    samples_compared: int | None = None
    problems: tuple[str, ...] = ()  # structural checks that failed
    notes: tuple[str, ...] = ()


@dataclass
class Reference:
    """The PyTorch student's side of every comparison, computed once per chain."""

    student: nn.Module
    compare_x: torch.Tensor  # the fixed validation sample, N x C x H x W
    logits: np.ndarray  # the student's logits on compare_x
    test: Dataset | None  # the held-out split; None: no task data, accuracy is not scored
    student_accuracy: float | None  # the PyTorch student's accuracy on `test`
    sample_origin: str
    transform: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    output_step: float | None = None  # a quantized student: the scale of its logits
    kind: TaskKind = field(default_factory=lambda: TASK_KINDS.get("classification"))

    @property
    def regression(self) -> bool:
        return self.kind.name == "regression"

    @property
    def embedding(self) -> bool:
        return self.kind.name == "embedding"

    @property
    def output_spread(self) -> float:
        """Standard deviation of the student's outputs on the compared sample (all outputs)."""
        return float(self.logits.std()) if self.logits.size else 0.0

    @classmethod
    def from_data(cls, student: nn.Module, compare: Dataset, test: Dataset | None) -> Reference:
        import torch

        compare_x = torch.cat([x for x, _ in iter_batches(compare, limit=COMPARE_SAMPLES)])
        origin = f"the first {len(compare_x)} samples of the val split"
        return cls._build(student, compare_x, test, origin, kind=task_kind(compare))

    @classmethod
    def from_random(
        cls, student: nn.Module, input_shape: tuple[int, ...], samples: int = COMPARE_SAMPLES
    ) -> Reference:
        """No task data: compare on seeded random inputs (standard-normal pixels, or token ids
        over the student's vocabulary); accuracy is not scored."""
        import torch

        generator = torch.Generator().manual_seed(0)
        vocab_size = getattr(float_model(student), "vocab_size", None)
        compare_x = random_input(input_shape, samples, generator, vocab_size)
        return cls._build(student, compare_x, None, f"{samples} seeded random inputs")

    @classmethod
    def _build(cls, student, compare_x, test, origin, transform=None, kind=None) -> Reference:
        student.eval()
        reference = cls(student, compare_x, _logits(student, compare_x), test, None, origin)
        reference.transform = transform
        if kind is not None:
            reference.kind = kind
        if is_quantized(student):
            reference.output_step = output_step(student, compare_x[:1])
        reference.student_accuracy = reference.score(lambda x: _logits(student, x))
        return reference

    def score(self, predict: Callable[[torch.Tensor], np.ndarray]) -> float | None:
        """The task's score (accuracy, or R²) of `predict` on the test split; None without."""
        import numpy as np
        import torch

        if self.test is None:
            return None
        outputs, targets = [], []
        for x, y in self.test_batches():
            outputs.append(np.asarray(predict(x), np.float32))
            targets.append(y)
        if not targets:
            return None
        return self.kind.score(torch.from_numpy(np.concatenate(outputs)), torch.cat(targets))

    def transformed(self, transform: Callable[[torch.Tensor], torch.Tensor], why: str) -> Reference:
        """The same comparison on transformed inputs (e.g. snapped to 8-bit image pixels)."""
        return Reference._build(
            self.student,
            transform(self.compare_x),
            self.test,
            f"{self.sample_origin}, {why}",
            transform,
            self.kind,
        )

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:

        if self.test is None:
            return
        for x, y in iter_batches(self.test):
            yield (self.transform(x) if self.transform else x), y

    @property
    def largest_logit(self) -> float:
        return float(abs(self.logits).max()) if self.logits.size else 0.0


def _logits(student: nn.Module, x: torch.Tensor) -> np.ndarray:
    import torch

    with torch.no_grad():
        return student(x).float().numpy()


def compare_predictions(predict: Predict, reference: Reference, runtime: str) -> Validation:
    """Run `predict` on the validation sample and the test split; compare with the student."""
    import numpy as np

    exported = np.asarray(predict(as_array(reference.compare_x)), np.float32)
    if exported.shape != reference.logits.shape:
        return Validation(
            "outputs",
            runtime,
            problems=(
                f"outputs have shape {list(exported.shape)}, the student's "
                f"{list(reference.logits.shape)}",
            ),
        )
    accuracy = reference.score(lambda x: predict(as_array(x)))
    agrees = exported.argmax(1) == reference.logits.argmax(1)
    decisive = _decisive(reference)
    notes = [f"compared on {reference.sample_origin}"]
    if reference.regression:
        return Validation(
            "outputs",
            runtime,
            max_abs_diff=float(np.abs(exported - reference.logits).max()),
            accuracy=accuracy,
            samples_compared=len(exported),
            notes=(*notes, f"outputs' spread (std) {reference.output_spread:.4g}"),
        )
    if reference.embedding:
        return Validation(
            "outputs",
            runtime,
            max_abs_diff=float(np.abs(exported - reference.logits).max()),
            min_cosine=_min_cosine(exported, reference.logits),
            accuracy=accuracy,
            samples_compared=len(exported),
            notes=tuple(notes),
        )
    if decisive is not None:
        notes.append(
            f"argmax agreement {agrees[decisive].mean() if decisive.any() else 1.0:.3f} on the "
            f"{int(decisive.sum())} samples whose top-2 logits differ by more than {TIE_STEPS} "
            f"output steps ({reference.output_step:.3g} each)"
        )
    return Validation(
        "outputs",
        runtime,
        max_abs_diff=float(np.abs(exported - reference.logits).max()),
        argmax_agreement=float(agrees.mean()),
        decisive_agreement=None
        if decisive is None
        else float(agrees[decisive].mean())
        if decisive.any()
        else 1.0,
        decisive_samples=None if decisive is None else int(decisive.sum()),
        accuracy=accuracy,
        samples_compared=len(exported),
        notes=tuple(notes),
    )


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    return float(cosines(torch.from_numpy(a).double(), torch.from_numpy(b).double()).min())


def _decisive(reference: Reference):
    """Mask of compared samples whose reference top-2 margin exceeds TIE_STEPS output steps;
    None for a float student."""
    import numpy as np

    if reference.output_step is None or reference.logits.shape[1] < 2:
        return None
    top2 = np.sort(reference.logits, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > TIE_STEPS * reference.output_step


def tolerance_for(precision: str, reference: Reference) -> dict[str, Any]:
    """What the figures of an artifact at `precision` must meet."""
    if precision == "fp32":
        return {"max_abs_diff": FP32_TOLERANCE * max(1.0, reference.largest_logit)}
    if reference.embedding:  # no classes: each embedding points where the student's does
        return {
            "min_cosine": EMBEDDING_MIN_COSINE.get(precision, EMBEDDING_MIN_COSINE["int8"]),
            "max_accuracy_drop": FP16_MAX_ACCURACY_DROP
            if precision == "fp16"
            else INT8_MAX_ACCURACY_DROP,
        }
    if reference.regression:  # no classes to agree on: outputs within a share of their spread
        share = REGRESSION_SPREAD_SHARE.get(precision, REGRESSION_SPREAD_SHARE["int8"])
        return {
            "max_abs_diff": share * reference.output_spread,
            "max_accuracy_drop": FP16_MAX_ACCURACY_DROP
            if precision == "fp16"
            else INT8_MAX_ACCURACY_DROP,
        }
    if precision == "fp16":
        return {
            "min_argmax_agreement": FP16_MIN_AGREEMENT,
            "max_accuracy_drop": FP16_MAX_ACCURACY_DROP,
        }
    if precision == "int8":
        return {
            "min_argmax_agreement": INT8_MIN_AGREEMENT,
            "max_accuracy_drop": INT8_MAX_ACCURACY_DROP,
        }
    return {"max_accuracy_drop": INT8_MAX_ACCURACY_DROP}  # other quantized forms (int4)


def judge(validation: Validation, tolerance: dict[str, Any], reference: Reference) -> list[str]:
    """Every way the validation misses its tolerance, in words (empty: it passes)."""
    problems = list(validation.problems)
    if validation.kind != "outputs" or problems:
        return problems
    limit = tolerance.get("max_abs_diff")
    diff = validation.max_abs_diff
    if limit is not None and diff is not None and diff > limit:
        problems.append(f"max abs output difference {diff:.3g} > {limit:.3g}")
    cosine = tolerance.get("min_cosine")
    if cosine is not None and validation.min_cosine is not None and validation.min_cosine < cosine:
        problems.append(f"lowest cosine to the student {validation.min_cosine:.4f} < {cosine}")
    agreement = tolerance.get("min_argmax_agreement")
    found = validation.argmax_agreement
    where = ""
    if validation.decisive_agreement is not None:
        found = validation.decisive_agreement
        where = f" on the {validation.decisive_samples} samples without a near tie"
    if agreement is not None and found is not None and found < agreement:
        problems.append(f"argmax agreement {found:.3f} < {agreement:.3f}{where}")
    drop = tolerance.get("max_accuracy_drop")
    if (
        drop is not None
        and validation.accuracy is not None
        and reference.student_accuracy is not None
        and reference.student_accuracy - validation.accuracy > drop
    ):
        problems.append(
            f"test {reference.kind.metric} {validation.accuracy:.4f} is more than {drop:.2f} "
            f"below the PyTorch student's {reference.student_accuracy:.4f}"
        )
    return problems


def record(artifact: Artifact, validation: Validation, tolerance: dict[str, Any]) -> None:
    """Write the validation figures into the artifact's entry."""
    artifact.validation = validation.kind
    artifact.validated_with = validation.runtime
    artifact.max_abs_diff = validation.max_abs_diff
    artifact.argmax_agreement = validation.argmax_agreement
    artifact.min_cosine = validation.min_cosine
    artifact.samples_compared = validation.samples_compared
    artifact.accuracy = validation.accuracy
    artifact.tolerance = tolerance if validation.kind == "outputs" else None
    artifact.notes = [*artifact.notes, *validation.notes]


def onnx_predictions(path: Path, x):
    """Logits of the ONNX model for every sample of `x` (tensor or array), run at batch 1."""
    import numpy as np

    session = onnx_session(path, threads=1)
    input_name = session.get_inputs()[0].name
    batch = as_array(x)
    return np.concatenate(
        [session.run(None, {input_name: batch[i : i + 1]})[0] for i in range(len(batch))]
    )
