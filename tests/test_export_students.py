"""Export-safe students: a tiny instance of every student family exports, and matches the
PyTorch module, in every format (at its precision) that some shipped profile deploys; at int8
the student is prepared for int8 (quant.prepare) and calibrated on random inputs first. Each
family is exported at an input it takes: 32x32 grey images, or 16 token ids of a 100-token
vocabulary."""

from __future__ import annotations

import pytest
import torch

from edgedistill.export import EXPORTERS, ExportContext
from edgedistill.export.chain import artifact_precision, deploy_formats, export_chain
from edgedistill.fit.plan import FULL_INTEGER_ONLY
from edgedistill.fit.search import PRECISIONS
from edgedistill.inputs import Vocabulary, example_input, random_input, takes_tokens
from edgedistill.profiles import load_profile, shipped_profile_names
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import FAMILIES, build_student

SHAPES = ((1, 32, 32), (16,))  # an image, token ids
VOCABULARY = Vocabulary(100)
CLASSES = 10


def _profile_formats() -> list[tuple[str, str, str]]:
    """(format, precision, a profile that deploys it) for every format a profile's chain uses."""
    found: dict[tuple[str, str], str] = {}
    for name in shipped_profile_names():
        profile = load_profile(name)
        precision = profile.deploy.precision
        precision = precision if precision in PRECISIONS else "fp32"
        for fmt in deploy_formats(profile):
            step = artifact_precision(EXPORTERS.get(fmt), precision)
            found.setdefault((fmt, step or profile.deploy.precision), name)
    return [(fmt, precision, profile) for (fmt, precision), profile in sorted(found.items())]


def tiny_instances(family: str, shape: tuple[int, ...]):
    """The family's first candidate and its one-knob-at-a-time variants that stay tiny,
    reduced to the smallest ones whose layer types cover all the others'."""
    space = list(FAMILIES.get(family).space(shape, VOCABULARY))
    if not space:
        return []
    base = space[0]
    variants = [base]
    for knob in base.knobs:
        values = sorted({c.knobs[knob] for c in space})
        wanted = {**base.knobs, knob: values[-1]}
        variants += [c for c in space if dict(c.knobs) == wanted]
    built = []
    for candidate in variants:
        module = build_student(candidate, shape, CLASSES)
        params = sum(p.numel() for p in module.parameters())
        if params <= 50_000:
            built.append((frozenset(type(m).__name__ for m in module.modules()), params, candidate))
    kept = [
        (kinds, params, c)
        for kinds, params, c in built
        if not any(kinds < other for other, _, _ in built)
    ]
    smallest: dict[frozenset, tuple[int, object]] = {}
    for kinds, params, candidate in kept:
        if kinds not in smallest or params < smallest[kinds][0]:
            smallest[kinds] = (params, candidate)
    return [candidate for _, candidate in smallest.values()]


CASES = [
    pytest.param(
        c.spec,
        shape,
        fmt,
        precision,
        id=f"{c.spec}-{fmt}-{precision}-{profile}",
    )
    for family in FAMILIES
    for shape in SHAPES
    for c in tiny_instances(family, shape)
    for fmt, precision, profile in _profile_formats()
]


@pytest.mark.parametrize(("spec", "shape", "fmt", "precision"), CASES)
def test_every_family_exports_to_every_profile_format(spec, shape, fmt, precision, tmp_path):
    from edgedistill.export.tensorrt import cuda_device_count
    from edgedistill.students import parse_student

    exporter = EXPORTERS.get(fmt)
    formats = [exporter.consumes, fmt] if exporter.consumes else [fmt]
    if any(artifact_precision(EXPORTERS.get(f), precision) is None for f in formats):
        pytest.skip(f"{fmt} {precision}: a format of its chain does not write {precision}")
    if fmt == "tensorrt" and cuda_device_count() == 0:
        pytest.skip("tensorrt: engines are built where a CUDA GPU is (device_tests/gpu)")
    pending = exporter.check(precision, ExportContext())
    if pending:
        pytest.skip(f"{fmt} {precision}: {pending}")
    if precision == "int8" and takes_tokens(shape) and fmt in FULL_INTEGER_ONLY:
        pytest.skip(f"{fmt}: full-integer models only; int8 text students keep float layers")
    torch.manual_seed(0)
    student = build_student(parse_student(spec), shape, CLASSES).eval()
    if precision == "int8":
        student = prepare(student, QuantScheme())
        calibrate(student, [random_input(shape, 16, vocab_size=VOCABULARY.size)])
    artifacts = export_chain(
        formats, precision, student, example_input(shape), tmp_path, None, context=ExportContext()
    )
    artifact = artifacts[-1]
    assert artifact.format == fmt and artifact.precision == precision
    assert artifact.validation in ("outputs", "structural")
    if artifact.validation == "outputs":
        assert artifact.argmax_agreement is not None and artifact.argmax_agreement >= 0.98
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"
