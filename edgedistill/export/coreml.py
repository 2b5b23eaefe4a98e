"""Core ML export with coremltools: an ML program (.mlpackage), fp16 by default, zipped.

int8 takes the prepared, calibrated student (quant.prepare) and stores its int8 weights with
their scales, plus int8 activations on iOS17+ (W8A8); `export_int4` writes int4 per-block
weights for iOS18+. coreml_quant.py says how each is built and checked.

The input is declared as an image when the task's preprocessing can be (Core ML applies
`scale * pixel + bias` itself; the per-channel 1/std is folded into the model), so a device team
feeds camera frames resized to the model's input size and gets logits named `logits`. Labels and
the full preprocessing go into the model's metadata.

Core ML predictions run only on macOS. Elsewhere the artifact is checked structurally: it loads,
its inputs, outputs, shapes, weight precision (int8 / int4 data behind constexpr dequantize
ops for the quantized precisions) and specification version are what was declared.
The .mlpackage is a directory, so it ships as a zip (deterministic: fixed order and times)
that unpacks to `model.<precision>.mlpackage`.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic
from edgedistill.errors import UserInputError
from edgedistill.export._extras import import_extra, require
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.coreml_quant import (
    INT4_SPEC,
    INT8_SPEC,
    Recipe,
    compress_weights,
    recipe_for,
    weight_problems,
)
from edgedistill.export.validate import Reference, Validation, compare_predictions
from edgedistill.inputs import takes_tokens
from edgedistill.quant.fake import exporting, is_quantized
from edgedistill.records.artifact import Artifact
from edgedistill.tasks.recipe import Preprocessing

if TYPE_CHECKING:
    from edgedistill.tasks.recipe import Preprocessing

log = logging.getLogger(__name__)
EXTRA = "coreml"
DEFAULT_TARGET = "iOS15"  # the oldest target that runs ML programs: the widest reach
# Core ML specification version each precision needs, and why. ML programs (fp32 or fp16
# compute) need specification 6 (iOS15 / macOS12 / tvOS15 / watchOS8).
MIN_SPEC_VERSION = {"fp32": 6, "fp16": 6, "int8": INT8_SPEC, "int4": INT4_SPEC}
_NEEDS = {
    "int8": "stores int8 weights (constexpr ops)",
    "int4": "stores int4 per-block weights",
}
# The oldest target that holds each quantized precision, when none is given.
_DEFAULT_TARGETS = {"int8": "iOS16", "int4": "iOS18"}
_TARGET = re.compile(r"^(iOS|macOS|tvOS|watchOS)(\d+)(_\d+)?$")
_COLOR_LAYOUTS = {"gray": "GRAYSCALE", "rgb": "RGB", "bgr": "BGR"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _coremltools():
    with converter_output("coremltools"):
        return import_extra("coremltools", EXTRA, "Core ML export")


def target_name(context: ExportContext, precision: str) -> str:
    """The minimum deployment target: the context's, else the oldest that holds `precision`."""
    return context.min_deployment_target or _DEFAULT_TARGETS.get(precision, DEFAULT_TARGET)


def resolve_target(name: str, origin: str, precision: str):
    """The coremltools target for `name`; refuse names it does not know or that are too old."""
    if not _TARGET.match(name):
        raise UserInputError(
            f"{origin} {name!r}: not a Core ML deployment target; expected e.g. iOS17, macOS14"
        )
    ct = _coremltools()
    target = ct.target.__members__.get(name)
    if target is None:
        known = ", ".join(ct.target.__members__)
        raise UserInputError(
            f"{origin} {name!r}: coremltools {ct.__version__} does not know this target "
            f"(known: {known})"
        )
    needed = MIN_SPEC_VERSION.get(precision)
    if needed is not None and target.value < needed:
        oldest = [n for n, t in ct.target.__members__.items() if t.value == needed]
        why = _NEEDS.get(precision, "is an ML program")
        raise UserInputError(
            f"{origin} {name}: a Core ML {precision} model {why}, which needs "
            f"{' / '.join(oldest)} or newer; raise the target (e.g. {oldest[0]}) or deploy "
            "elsewhere"
        )
    return target


def image_input_for(preprocessing: Preprocessing | None, channels: int) -> dict | None:
    """ImageType arguments reproducing `preprocessing`, or None when it cannot be declared."""
    if preprocessing is None:
        return None
    layout = _COLOR_LAYOUTS.get(preprocessing.channel_order)
    expected_channels = 1 if preprocessing.channel_order == "gray" else 3
    if layout is None or channels != expected_channels:
        return None
    if len(preprocessing.mean) != channels or len(preprocessing.std) != channels:
        return None
    bias = [-mean for mean in preprocessing.mean]
    return {
        "scale": float(preprocessing.scale),
        "bias": bias[0] if channels == 1 else bias,
        "color_layout": layout,
        "inverse_std": [1.0 / std for std in preprocessing.std],
    }


def _with_inverse_std(student, inverse_std: list[float]):
    """The student behind a per-channel multiply: Core ML's image scale is one number."""
    import torch
    from torch import nn

    class ScaledInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = student
            self.register_buffer("inverse_std", torch.tensor(inverse_std).view(1, -1, 1, 1))

        def forward(self, x):
            return self.student(x * self.inverse_std)

    return ScaledInput().eval()


@EXPORTERS.register("coreml")
class CoreMLExporter:
    name = "coreml"
    runs_on = "coreml"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".mlpackage.zip"
    precisions = ("fp32", "fp16", "int8")  # int4: export_int4, next to an int8 artifact
    consumes = None
    compiles_for_runtime = None
    hub = False
    extra = EXTRA
    modules = ("coremltools",)
    tools = ()
    validated_on = "macOS: Core ML predictions; elsewhere structural (spec, shapes, precision)"

    def check(self, precision: str, context: ExportContext) -> str | None:
        require(self.modules, EXTRA, "Core ML export")
        resolve_target(
            target_name(context, precision), context.min_deployment_target_origin, precision
        )
        return None

    def export(
        self,
        student,
        example,
        out: Path,
        precision: str = "fp16",
        context: ExportContext | None = None,
    ) -> Artifact:
        refuse_unwritten_precision(self, precision)
        return _export(student, example, out, precision, context or ExportContext())

    def host_runner(self, path: Path) -> None:
        return None  # Core ML predicts on macOS only; validation there goes through validate

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        ct = _coremltools()
        with tempfile.TemporaryDirectory(prefix="edgedistill-coreml-") as scratch:
            package = unzip_package(Path(artifact.path), Path(scratch))
            with converter_output("coremltools"):
                spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
            problems = structural_problems(spec, artifact, reference)
            problems += _target_problems(ct, spec)
            if platform.system() != "Darwin" or problems:
                return Validation(
                    "structural",
                    f"coremltools {ct.__version__} (structural: loads; inputs, outputs, shapes, "
                    "weight precision, specification version; predictions need macOS)",
                    problems=tuple(problems),
                )
            return _compare_on_macos(ct, package, spec, reference)


def export_int4(student, example, out: Path, context: ExportContext | None = None) -> Artifact:
    """int4 per-block weights (W4A16) of a prepared student for iOS18+ targets: a Core ML
    artifact of its own (`model.int4.mlpackage.zip`), written next to the int8 one by a caller
    that wants it; `--precision` stays int8. CoreMLExporter.validate checks it like the rest."""
    return _export(student, example, out, "int4", context or ExportContext())


def _export(student, example, out: Path, precision: str, context: ExportContext) -> Artifact:
    name = target_name(context, precision)
    target = resolve_target(name, context.min_deployment_target_origin, precision)
    shape = tuple(example.shape)
    tokens = takes_tokens(shape[1:])
    recipe = None
    if precision in ("int8", "int4"):
        if not is_quantized(student):
            raise ValueError(
                f"Core ML {precision} export takes a prepared, calibrated student (quant.prepare)"
            )
        recipe = recipe_for(precision, target.value, tokens)
    elif is_quantized(student):
        raise ValueError(
            f"a Core ML {precision} export takes the float student, not a quantized one"
        )
    ct = _coremltools()
    image = None if tokens else image_input_for(context.preprocessing, shape[1])
    if recipe is None:
        mlmodel = _convert(ct, student.eval(), example, image, target, precision)
    else:
        with exporting(student, mode=recipe.torch_mode) as converted:
            mlmodel = _convert(ct, converted, example, image, target, precision)
        mlmodel = compress_weights(ct, mlmodel, recipe)
    _describe(mlmodel, context, precision, image is not None, name, recipe, tokens)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".coreml-", dir=out.parent) as scratch:
        package = Path(scratch) / out.name.removesuffix(".zip")
        with converter_output("coremltools"):
            mlmodel.save(str(package))
        _zip_directory(package, out)
    return Artifact.written(
        CoreMLExporter.name,
        precision,
        out,
        example.shape,
        notes=[
            f"minimum deployment target {name}",
            *(recipe.notes if recipe is not None else ()),
            _input_note(image, shape),
        ],
    )


def _convert(ct, model, example, image: dict | None, target, precision: str):
    """The ML program of `model`, computing in fp32 for fp32 and in fp16 otherwise."""
    import numpy as np
    import torch

    shape = tuple(example.shape)
    if image is not None:
        model = _with_inverse_std(model, image["inverse_std"])
        model_input = ct.ImageType(
            name="input",
            shape=shape,
            scale=image["scale"],
            bias=image["bias"],
            color_layout=getattr(ct.colorlayout, image["color_layout"]),
        )
    elif takes_tokens(shape[1:]):  # token ids: Core ML's integer arrays are int32
        model_input = ct.TensorType(name="input", shape=shape, dtype=np.int32)
    else:
        model_input = ct.TensorType(name="input", shape=shape, dtype=np.float32)
    compute_precision = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    with converter_output("coremltools"):
        program = torch.export.export(model, (example,)).run_decompositions({})
        mlmodel = ct.convert(
            program,
            convert_to="mlprogram",
            inputs=[model_input],
            outputs=[ct.TensorType(name="logits", dtype=np.float32)],
            minimum_deployment_target=target,
            compute_precision=compute_precision,
            skip_model_load=True,
        )
    return mlmodel


def _input_note(image: dict | None, shape: tuple[int, ...]) -> str:
    if takes_tokens(shape[1:]):
        return f"input is int32 token ids, 1 x {shape[1]} (the bundle's tokenizer, padded)"
    if image is None:
        return "input is the preprocessed float32 tensor (no image preprocessing)"
    return (
        f"input is a {image['color_layout'].lower()} image of {shape[3]}x{shape[2]} "
        "pixels (resize first); scale, mean and std are applied inside the model"
    )


def _describe(
    mlmodel,
    context: ExportContext,
    precision: str,
    image: bool,
    target: str,
    recipe: Recipe | None,
    tokens: bool = False,
) -> None:
    mlmodel.author = "edgedistill"
    quantization = f" ({recipe.label})" if recipe is not None else ""
    mlmodel.short_description = (
        f"edgedistill student for {context.device or 'any device'}, {precision}{quantization}; "
        f"output `logits` over {len(context.labels) or 'the task'} classes"
    )
    if tokens:
        mlmodel.input_description["input"] = (
            "int32 token ids, 1 x L, padded (see metadata `preprocessing`: the tokenizer)"
        )
    elif image:
        mlmodel.input_description["input"] = (
            "image resized to the model input; pixel values as in metadata `preprocessing`"
        )
    else:
        mlmodel.input_description["input"] = (
            "preprocessed float32 tensor, N x C x H x W (see metadata `preprocessing`)"
        )
    mlmodel.output_description["logits"] = "unnormalised class scores, in metadata `labels` order"
    metadata = mlmodel.user_defined_metadata
    metadata["labels"] = json.dumps(list(context.labels))
    metadata["precision"] = precision
    metadata["min_deployment_target"] = target
    if recipe is not None:
        metadata["quantization"] = recipe.label
    if context.preprocessing is not None:
        metadata["preprocessing"] = context.preprocessing.model_dump_json()


def _zip_directory(folder: Path, out: Path) -> None:
    """Zip `folder` (as its own top-level entry) to `out`: sorted entries, fixed timestamps."""
    with (
        atomic.replacing(out) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder.parent).as_posix()
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())


def unzip_package(archive_path: Path, into: Path) -> Path:
    """Unpack a zipped .mlpackage under `into`; refuse entries that would land outside it."""
    with zipfile.ZipFile(archive_path) as archive:
        roots = set()
        for member in archive.namelist():
            parts = Path(member).parts
            if Path(member).is_absolute() or ".." in parts:
                raise UserInputError(f"{archive_path}: unsafe entry {member!r} in the archive")
            roots.add(parts[0])
        if len(roots) != 1 or not next(iter(roots)).endswith(".mlpackage"):
            raise UserInputError(f"{archive_path}: expected one .mlpackage folder inside")
        archive.extractall(into)
    return into / roots.pop()


def structural_problems(spec, artifact: Artifact, reference: Reference) -> list[str]:
    """Everything in the spec that differs from what the exporter declared."""
    problems = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type is {spec.WhichOneof('Type')}, expected mlProgram")
    inputs = {item.name: item for item in spec.description.input}
    outputs = {item.name: item for item in spec.description.output}
    if list(inputs) != ["input"]:
        problems.append(f"inputs are {list(inputs)}, expected ['input']")
    if list(outputs) != ["logits"]:
        problems.append(f"outputs are {list(outputs)}, expected ['logits']")
    shape = artifact.input_shape
    if "input" in inputs:
        feature = inputs["input"].type
        if feature.WhichOneof("Type") == "imageType":
            found = [feature.imageType.height, feature.imageType.width]
            if found != shape[2:]:
                problems.append(
                    f"image input is {found[1]}x{found[0]}, expected {shape[3]}x{shape[2]}"
                )
        elif list(feature.multiArrayType.shape) != shape:
            problems.append(f"input shape {list(feature.multiArrayType.shape)}, expected {shape}")
    if "logits" in outputs:
        found = list(outputs["logits"].type.multiArrayType.shape)
        expected = [shape[0], reference.logits.shape[1]]
        if found != expected:
            problems.append(f"logits shape {found}, expected {expected}")
    labels = json.loads(spec.description.metadata.userDefined.get("labels", "[]"))
    if labels and len(labels) != reference.logits.shape[1]:
        problems.append(f"{len(labels)} labels for {reference.logits.shape[1]} logits")
    metadata = spec.description.metadata.userDefined
    declared = metadata.get("precision", artifact.precision)
    if declared != artifact.precision:
        problems.append(f"the package says it is {declared}, the artifact {artifact.precision}")
    return problems + weight_problems(spec, artifact.precision, metadata.get("quantization"))


def _target_problems(ct, spec) -> list[str]:
    """The specification version must load on the declared minimum deployment target."""
    name = spec.description.metadata.userDefined.get("min_deployment_target", "")
    target = ct.target.__members__.get(name)
    if target is None:
        return [f"metadata names no known minimum deployment target ({name!r})"]
    if spec.specificationVersion > target.value:
        return [
            f"specification version {spec.specificationVersion} does not load on {name} "
            f"(which reads up to {target.value})"
        ]
    return []


def _compare_on_macos(ct, package: Path, spec, reference: Reference) -> Validation:
    """Run Core ML on this Mac (CPU only, for reproducible figures) and compare outputs."""
    import numpy as np

    model = ct.models.MLModel(str(package), compute_units=ct.ComputeUnit.CPU_ONLY)
    feature = spec.description.input[0].type
    runtime = f"Core ML via coremltools {ct.__version__} on macOS {platform.mac_ver()[0]}, CPU"
    if feature.WhichOneof("Type") != "imageType":

        def predict(batch):
            return np.concatenate(
                [model.predict({"input": batch[i : i + 1]})["logits"] for i in range(len(batch))]
            )

        return compare_predictions(predict, reference, runtime)
    metadata = spec.description.metadata.userDefined

    preprocessing = Preprocessing.model_validate_json(metadata["preprocessing"])
    snapped = reference.transformed(
        lambda x: _snap_to_pixels(x, preprocessing), "snapped to 8-bit pixels"
    )

    def predict_images(batch):
        outputs = []
        for sample in batch:
            image = _to_image(sample, preprocessing)
            outputs.append(model.predict({"input": image})["logits"])
        return np.concatenate(outputs)

    return compare_predictions(predict_images, snapped, runtime)


def _pixels(x, preprocessing: Preprocessing):
    import torch

    mean = torch.tensor(preprocessing.mean).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, -1, 1, 1)
    return ((x * std + mean) / preprocessing.scale).round().clamp(0, 255)


def _snap_to_pixels(x, preprocessing: Preprocessing):
    """The tensor an 8-bit image of `x` becomes after preprocessing (what Core ML is fed)."""
    import torch

    mean = torch.tensor(preprocessing.mean).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, -1, 1, 1)
    return (_pixels(x, preprocessing) * preprocessing.scale - mean) / std


def _to_image(sample, preprocessing: Preprocessing):
    import numpy as np
    import torch
    from PIL import Image

    pixels = _pixels(torch.from_numpy(np.asarray(sample))[None], preprocessing)[0]
    array = pixels.numpy().astype(np.uint8)
    if preprocessing.channel_order == "gray":
        return Image.fromarray(array[0], mode="L")
    if preprocessing.channel_order == "bgr":
        array = array[::-1]
    return Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), mode="RGB")
