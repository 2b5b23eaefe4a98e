"""Text distillation on the built-in fortunes task: the transformer teacher trained here, then
students trained from scratch (ce), with logit KD (kd) and with KD plus TinyBERT-style hidden-state
matching through a learned projection (kd+hidden), over several seeds; test accuracy (mean +-
std), retention (student / teacher accuracy) and the onnxruntime latency of each ONNX file at
batch 1 and the task's sequence length, measured side by side on this host (1 thread).

Sentence embeddings (`--part embeddings`): the same trained teacher's encoder is written as a
sentence-transformers folder (a transformers BertModel, mean pooling, L2-normalised: the
embedding teacher built here), and students learn its embeddings of the fortunes texts, labels
unused (`task_type: embedding`, the default cosine + MSE terms); mean cosine to the teacher's
embedding and nearest-neighbour agreement on the test texts, against the latency ratio.

Run: .venv/bin/python benchmarks/text_kd.py [--part both|classification|embeddings] [--seeds 3]
     [--students tfm:l=2,h=128 tfm:l=1,h=64]
Targets (issue 13): classification: retention >= 0.97 at >= 4x lower latency than the teacher;
embeddings: mean cosine >= 0.9 at >= 4x lower latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402

TASK = "fortunes"
METHODS = {"ce": ["ce"], "kd": ["kd"], "kd+hidden": ["kd", "hidden-mse"]}


def hidden_pairs(student: str, teacher_layers: int) -> list[str]:
    """Each student layer's output against the teacher layer it follows (spread evenly)."""
    from edgedistill.students.candidate import Candidate
    from edgedistill.students.transformer import spread_layers

    layers = int(Candidate.parse(student).knobs["l"])
    return [
        f"layers.{index}=layers.{teacher}"
        for index, teacher in enumerate(spread_layers(layers, teacher_layers))
    ]


def distill(student: str, losses: list[str], seed: int, scratch: Path, layers: list[str]) -> dict:
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill

    out = scratch / f"{student.replace(':', '-').replace(',', '_')}-{'+'.join(losses)}-{seed}"
    options = DistillOptions(
        task=TASK,
        student=student,
        losses=losses,
        layers=layers if "hidden-mse" in losses else None,
        seed=seed,
        out=out,
    )
    _, result = run_distill(plan_distill(options))
    return result.model_dump(mode="json")


def latencies(students: list[str]) -> tuple[dict[str, float], dict[str, int], float, int]:
    """p50 ms of the teacher's and each student's ONNX (random student weights: latency does
    not depend on them), measured one after the other; and the parameter counts."""
    from edgedistill.distill.teacher_training import load_teacher
    from edgedistill.export import EXPORTERS
    from edgedistill.inputs import example_input
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.students import build_student, parse_student, with_task_knobs
    from edgedistill.students.candidate import Candidate
    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import feed_teacher

    task = load_task(TASK)
    teacher = load_teacher(feed_teacher(task).teacher)
    shape, classes = task.data.input_shape, len(task.recipe.labels)
    modules = {"teacher": teacher.model}
    for spec in students:
        candidate = parse_student(with_task_knobs(Candidate.parse(spec), task.data.vocabulary).spec)
        modules[spec] = build_student(candidate, shape, classes).eval()
    measured, params = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, module in modules.items():
            path = Path(scratch) / f"{len(measured)}.onnx"
            EXPORTERS.get("onnx").export(module, example_input(shape), path, "fp32")
            measured[name] = measure_onnx(path, BenchProtocol(threads=1)).p50
            params[name] = sum(p.numel() for p in module.parameters())
    return measured, params, teacher.test_accuracy, shape[0]


def embedding_teacher(folder: Path) -> tuple[Path, int]:
    """The fortunes teacher's encoder as a sentence-transformers folder (BertModel + the task's
    tokenizer, mean pooling, Normalize); checked to compute the teacher's hidden states.
    Returns (the folder, the task's sequence length)."""
    import json
    import shutil

    import torch
    import transformers

    from edgedistill.distill.teacher_training import load_teacher
    from edgedistill.students.transformer import as_bert_state
    from edgedistill.tasks.task import load_task
    from edgedistill.tasks.text_task import tokenizer_files
    from edgedistill.teachers import feed_teacher

    task = load_task(TASK)
    teacher = load_teacher(feed_teacher(task).teacher).model.eval()
    config = transformers.BertConfig(
        vocab_size=teacher.vocab_size,
        hidden_size=teacher.hidden,
        num_hidden_layers=teacher.num_layers,
        num_attention_heads=teacher.heads,
        intermediate_size=teacher.intermediate,
        max_position_embeddings=teacher.max_len,
        type_vocab_size=1,
        pad_token_id=teacher.pad_id,
        layer_norm_eps=1e-12,
    )
    encoder = transformers.BertModel(config, add_pooling_layer=False).eval()
    heads = ("pooler.", "classifier.")  # the classifier's head: the embedding does not use it
    state = {
        k: v for k, v in as_bert_state(teacher.state_dict()).items() if not k.startswith(heads)
    }
    state["embeddings.token_type_embeddings.weight"] = torch.zeros(1, teacher.hidden)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    ids = task.data.test.x[:8]
    with torch.no_grad():
        ours = teacher.features(ids)["hidden_states"][-1]
        theirs = encoder(input_ids=ids, attention_mask=(ids != teacher.pad_id).long())
    mask = (ids != teacher.pad_id).unsqueeze(-1)
    gap = float(((ours - theirs.last_hidden_state).abs() * mask).max())
    assert gap < 1e-4, f"the BertModel does not compute the teacher's states ({gap})"
    encoder.save_pretrained(folder)
    for path in tokenizer_files(Path(task.recipe.preprocessing.tokenizer)):
        shutil.copy(path, folder / path.name)
    models = "sentence_transformers.models."
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": models + "Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": models + "Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": models + "Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "2_Normalize").mkdir()
    pooling = {"word_embedding_dimension": teacher.hidden, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder, task.data.input_shape[0]


def embedding_recipe(folder: Path, teacher: Path, length: int) -> Path:
    """The fortunes texts as a sentence-embedding task taught by `teacher` (labels unused)."""
    import json

    recipe = folder / "fortunes-embeddings.yaml"
    document = {
        "name": "fortunes-embeddings",
        "task_type": "embedding",
        "data": {"source": "builtin:fortunes", "split": {"train": 0.7, "val": 0.15, "seed": 0}},
        "preprocessing": {"max_length": length},
        "teacher": {"source": f"hf:{teacher}"},
    }
    recipe.write_text(json.dumps(document))
    return recipe


def embeddings(args, ms: dict[str, float], params: dict[str, int]) -> None:
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill
    from edgedistill.tasks.evaluate import metrics

    print("\nsentence embeddings: the teacher's encoder, mean-pooled and normalised")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "teacher").mkdir()
        teacher, length = embedding_teacher(root / "teacher")
        recipe = embedding_recipe(root, teacher, length)
        for student in args.students:
            figures = []
            for seed in range(args.seeds):
                out = root / f"{student.replace(':', '-').replace(',', '_')}-{seed}"
                options = DistillOptions(task=str(recipe), student=student, seed=seed, out=out)
                plan = plan_distill(options)
                model, _ = run_distill(plan)
                figures.append(metrics(model, plan.task.data.test))
            rows.append((student, figures))
            print(
                f"  {student}: "
                + ", ".join(f"{f['cosine']:.4f}/{f['neighbour_agreement']:.3f}" for f in figures),
                flush=True,
            )
    print(f"\n{args.seeds} seeds; mean cosine to the teacher's embedding (its own: 1)")
    header = ("student", "params", "cosine", "std", "nn-agree", "p50 ms", "faster")
    print("{:<16} {:>9} {:>7} {:>7} {:>9} {:>7} {:>7}".format(*header))
    met = []
    for student, figures in rows:
        cosines = [f["cosine"] for f in figures]
        mean = statistics.mean(cosines)
        std = statistics.stdev(cosines) if len(cosines) > 1 else 0.0
        agreement = statistics.mean(f["neighbour_agreement"] for f in figures)
        faster = ms["teacher"] / ms[student]
        print(
            f"{student:<16} {params[student]:>9,} {mean:>7.4f} {std:>7.4f} {agreement:>9.3f} "
            f"{ms[student]:>7.3f} {faster:>6.1f}x"
        )
        met.append(mean >= 0.9 and faster >= 4)
    print(
        "target (mean cosine >= 0.9 at >= 4x lower latency): " + ("met" if any(met) else "MISSED")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("both", "classification", "embeddings"), default="both")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--students", nargs="+", default=["tfm:l=2,h=128", "tfm:l=1,h=64"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(host_line())
    ms, params, teacher_accuracy, length = latencies(args.students)
    if args.part != "embeddings":
        classification(args, ms, params, teacher_accuracy, length)
    if args.part != "classification":
        embeddings(args, ms, params)


def classification(args, ms, params, teacher_accuracy: float, length: int) -> None:
    teacher_layers = 4  # fortunes.yaml: tfm:l=4,h=256
    print(
        f"teacher tfm:l=4,h=256 ({params['teacher']:,} params): test accuracy "
        f"{teacher_accuracy:.4f}, onnxruntime p50 {ms['teacher']:.3f} ms at batch 1, "
        f"{length} tokens"
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for student in args.students:
            pairs = hidden_pairs(student, teacher_layers)
            for method, losses in METHODS.items():
                accuracy = [
                    distill(student, losses, seed, Path(scratch), pairs)["accuracy"]
                    for seed in range(args.seeds)
                ]
                rows.append((student, method, accuracy))
                print(
                    f"  {student} {method}: {', '.join(f'{a:.4f}' for a in accuracy)}", flush=True
                )
    print(f"\n{args.seeds} seeds; retention = mean accuracy / teacher accuracy")
    header = ("student", "params", "method", "mean", "std", "retention", "p50 ms", "faster")
    print("{:<16} {:>9} {:<10} {:>7} {:>7} {:>9} {:>7} {:>7}".format(*header))
    met = []
    for student, method, accuracy in rows:
        mean = statistics.mean(accuracy)
        std = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
        retention = mean / teacher_accuracy
        faster = ms["teacher"] / ms[student]
        print(
            f"{student:<16} {params[student]:>9,} {method:<10} {mean:>7.4f} {std:>7.4f} "
            f"{retention:>9.3f} {ms[student]:>7.3f} {faster:>6.1f}x"
        )
        if method != "ce":
            met.append(retention >= 0.97 and faster >= 4)
    print(
        "target (retention >= 0.97 at >= 4x lower latency, a distilled student): "
        + ("met" if any(met) else "MISSED")
    )


if __name__ == "__main__":
    main()
