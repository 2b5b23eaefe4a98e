"""How a device team loads and calls each format a bundle can ship: the runtime, its minimum
version, and a few lines of code in the language that platform uses. One entry per format;
the model card (card.py) and the manifest (writer.py) read them.

Every snippet takes the preprocessed input the card describes (resize, x * scale, then
(x - mean) / std per channel; N x C x H x W for ONNX and TensorRT, N x H x W x C for TFLite and
Core ML's multiarray) and returns the logits; the largest one is the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgedistill.registry import Registry


@dataclass(frozen=True)
class FormatUsage:
    runtime: str
    minimum: str  # the oldest runtime the file needs, in words
    # (language, code) pairs; {file} {input} {output} {shape} {nhwc} {elements} {shape_list}
    # {shape_x} {classes} in the code are filled in by `render`
    snippets: tuple[tuple[str, str], ...]

    def render(
        self, file: str, artifact: dict[str, Any], classes: int = 0
    ) -> list[tuple[str, str]]:
        shape = list(artifact.get("input_shape") or [1, 3, 224, 224])
        nhwc = [shape[0], *shape[2:], shape[1]] if len(shape) == 4 else shape
        values = dict(
            file=file,
            input=artifact.get("input_name", "input"),
            output=artifact.get("output_name", "logits"),
            shape=tuple(shape),
            nhwc=tuple(nhwc),
            elements=_product(shape),
            shape_list=list(shape),
            shape_x="x".join(str(size) for size in shape),
            classes=classes or "NUM_OUTPUTS",
        )
        return [(language, code.format(**values)) for language, code in self.snippets]


def _product(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= int(size)
    return total


USAGE: Registry[FormatUsage] = Registry("bundle format")

USAGE.register("onnx")(
    FormatUsage(
        runtime="onnxruntime",
        minimum="onnxruntime 1.14 or later (the first with ONNX opset 18, which the file "
        "declares); int8 files are QDQ, which every execution provider reads",
        snippets=(
            (
                "python",
                """import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("{file}", providers=["CPUExecutionProvider"])
x = np.zeros({shape}, dtype=np.float32)  # preprocessed input, N x C x H x W
logits = session.run(["{output}"], {{"{input}": x}})[0]
print(logits.argmax(axis=1))""",
            ),
        ),
    )
)

USAGE.register("tflite")(
    FormatUsage(
        runtime="LiteRT (TensorFlow Lite)",
        minimum="a LiteRT (TensorFlow Lite) runtime with the builtin operators only, no Flex "
        "or custom ops; int8 files take integer input and output, quantized with the "
        "tensors' scale and zero point (in the manifest's `io_quantization`)",
        snippets=(
            (
                "python",
                """import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{file}")
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
x = np.zeros({nhwc}, dtype=np.float32)  # preprocessed input, N x H x W x C
if inp["dtype"] != np.float32:  # int8 file: quantize the input, dequantize the output
    scale, zero = inp["quantization"]
    x = np.clip(np.round(x / scale) + zero, -128, 127).astype(inp["dtype"])
interpreter.set_tensor(inp["index"], x)
interpreter.invoke()
logits = interpreter.get_tensor(out["index"]).astype(np.float32)
if out["dtype"] != np.float32:
    scale, zero = out["quantization"]
    logits = (logits - zero) * scale
print(logits.argmax(axis=1))""",
            ),
            (
                "kotlin",
                """// Android: org.tensorflow:tensorflow-lite (or com.google.ai.edge.litert)
val interpreter = Interpreter(FileUtil.loadMappedFile(context, "{file}"))
val input = ByteBuffer.allocateDirect(4 * {elements}).order(ByteOrder.nativeOrder())
val logits = Array(1) {{ FloatArray({classes}) }}
// fill `input` with the preprocessed N x H x W x C floats (int8 files: int8 levels)
interpreter.run(input, logits)""",
            ),
        ),
    )
)

USAGE.register("edgetpu")(
    FormatUsage(
        runtime="LiteRT with the Edge TPU delegate (libedgetpu)",
        minimum="edgetpu_compiler 16 output; libedgetpu 16 on the board",
        snippets=(
            (
                "python",
                """from pycoral.utils.edgetpu import make_interpreter

interpreter = make_interpreter("{file}")  # loads libedgetpu's delegate
interpreter.allocate_tensors()
# then as for the TFLite file: int8 input {nhwc},
# quantized with the input tensor's scale and zero point""",
            ),
        ),
    )
)

USAGE.register("coreml")(
    FormatUsage(
        runtime="Core ML",
        minimum="iOS 16 / macOS 13 (ML program); int4 weights: iOS 18 / macOS 15",
        snippets=(
            (
                "swift",
                """import CoreML

// Xcode compiles {file} into the app as model.mlmodelc
let url = Bundle.main.url(forResource: "model", withExtension: "mlmodelc")!
let model = try MLModel(contentsOf: url)
let input = try MLMultiArray(shape: {shape_list}, dataType: .float32)  // or a CVPixelBuffer
let features = try MLDictionaryFeatureProvider(dictionary: ["{input}": input])
let output = try model.prediction(from: features)
let logits = output.featureValue(for: "{output}")!.multiArrayValue!""",
            ),
        ),
    )
)

USAGE.register("tensorrt")(
    FormatUsage(
        runtime="TensorRT",
        minimum="exactly the TensorRT version and GPU it was built with (engines are not portable)",
        snippets=(
            ("sh", "trtexec --loadEngine={file} --shapes={input}:{shape_x} --iterations=100"),
            (
                "cpp",
                """nvinfer1::IRuntime* runtime = nvinfer1::createInferRuntime(logger);
auto* engine = runtime->deserializeCudaEngine(data, size);  // bytes of {file}
auto* context = engine->createExecutionContext();
context->setTensorAddress("{input}", d_input); context->setTensorAddress("{output}", d_out);
context->enqueueV3(stream);""",
            ),
        ),
    )
)


# A text model's snippets: the bundle's tokenizer makes the ids (tokenizer/, as preprocessing.json
# says), padded or cut to the input's length. Formats without one here name the input only.
TOKENIZE = """from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("tokenizer")  # the bundle's tokenizer/ folder
ids = tokenizer(["your text"], padding="max_length", truncation=True,
                max_length={{length}}, return_tensors="np")["input_ids"]  # int64, 1 x {{length}}"""
TEXT_SNIPPETS: Registry[tuple[tuple[str, str], ...]] = Registry("bundle format (text)")
TEXT_SNIPPETS.register("onnx")(
    (
        (
            "python",
            TOKENIZE
            + """
import onnxruntime as ort

session = ort.InferenceSession("{file}", providers=["CPUExecutionProvider"])
logits = session.run(["{output}"], {{"{input}": ids}})[0]
print(logits.argmax(axis=1))""",
        ),
    )
)
TEXT_SNIPPETS.register("tflite")(
    (
        (
            "python",
            TOKENIZE
            + """
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{file}")
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
interpreter.set_tensor(inp["index"], ids.astype(inp["dtype"]))  # int32 ids
interpreter.invoke()
values = interpreter.get_tensor(out["index"]).astype(np.float32)
if out["quantization"][0]:  # int8 file: int8 outputs, dequantized with their scale
    scale, zero = out["quantization"]
    values = (values - zero) * scale
print(values.argmax(axis=1))""",
        ),
    )
)
TEXT_SNIPPETS.register("coreml")(
    (
        (
            "swift",
            """import CoreML

let model = try MLModel(contentsOf: compiledURL)  // {file}, compiled with MLModel.compileModel
let ids = try MLMultiArray(shape: {shape_list}, dataType: .int32)
// fill `ids` with the tokenizer's ids (bundle tokenizer/), padded or cut to {{length}}
let input = try MLDictionaryFeatureProvider(dictionary: ["input": ids])
let logits = try model.prediction(from: input).featureValue(for: "logits")!.multiArrayValue!""",
        ),
    )
)


def render_usage(
    format: str, file: str, artifact: dict[str, Any], classes: int = 0
) -> tuple[FormatUsage, list[tuple[str, str]]]:
    """The format's usage and its code for this artifact; a text model's (token ids N x L)
    code tokenizes first."""
    usage = USAGE.get(format)
    shape = list(artifact.get("input_shape") or [])
    if len(shape) != 2:
        return usage, usage.render(file, artifact, classes)
    snippets = TEXT_SNIPPETS.get(format) if format in TEXT_SNIPPETS else ()
    text = FormatUsage(usage.runtime, usage.minimum, snippets)
    rendered = text.render(file, artifact, classes)
    rendered = [(language, code.replace("{length}", str(shape[1]))) for language, code in rendered]
    if not rendered:
        rendered = [("text", f"input: int64 token ids {shape[0]} x {shape[1]} (tokenizer/)")]
    return text, rendered
