"""What a task predicts and how it is scored: classification (class logits, accuracy),
regression (float outputs; MAE, RMSE and R²) or sentence embeddings (the teacher's embedding is
the target; mean cosine and nearest-neighbour agreement).

Each kind gives the figures a run reports and the one score that stands for them (higher is
better): accuracy, R² averaged over the outputs (as scikit-learn's `r2_score` does), or the
mean cosine to the teacher's embedding. Retention is student score / teacher score in all
three (the teacher's own cosine is 1, so an embedding student's retention is its mean cosine).
The kind of a split is told by its targets: int64 class indices (-1: unlabeled) or float32 rows
of outputs (NaN: unlabeled); float targets that are a teacher's embeddings are marked by their
split (`Split.kind`, tasks/data.py: `task_kind`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    import torch


class TaskKind(Protocol):
    name: str
    metric: str  # the score's name: accuracy | r2 | cosine

    def labeled(self, targets: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the samples that carry a target."""
        ...

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> float: ...

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]: ...

    def hard_loss(
        self,
        outputs: torch.Tensor,
        targets: torch.Tensor,
        label_smoothing: float = 0.0,
        huber_delta: float | None = None,
    ) -> torch.Tensor:
        """The loss on the targets alone (labeled samples; 0 when none is): cross-entropy
        (with `label_smoothing`), or squared error (Huber with `huber_delta` when given)."""
        ...

    def unlabeled(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets of the same shape and dtype that mark every sample unlabeled."""
        ...

    def strata(self, targets: torch.Tensor) -> torch.Tensor:
        """int64 groups to sample evenly from: the class (-1 unlabeled), or one group."""
        ...


TASK_KINDS: Registry[TaskKind] = Registry("task type", instances=True)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = int(mask.sum())
    if count == 0:
        return values.sum() * 0.0
    return (values * mask).sum() / count


@TASK_KINDS.register("classification")
class Classification:
    name = "classification"
    metric = "accuracy"

    def labeled(self, targets):
        return targets >= 0

    def score(self, outputs, targets) -> float:
        mask = self.labeled(targets)
        hits = outputs.argmax(dim=1)[mask] == targets[mask]
        return float(hits.float().mean()) if len(hits) else 0.0

    def metrics(self, outputs, targets) -> dict[str, float]:
        return {"accuracy": self.score(outputs, targets)}

    def hard_loss(self, outputs, targets, label_smoothing: float = 0.0, huber_delta=None):
        import torch.nn.functional as F

        per_sample = F.cross_entropy(
            outputs, targets.clamp(min=0), reduction="none", label_smoothing=label_smoothing
        )
        return _masked_mean(per_sample, self.labeled(targets))

    def unlabeled(self, targets):
        import torch

        return torch.full_like(targets, -1)

    def strata(self, targets):
        return targets


@TASK_KINDS.register("regression")
class Regression:
    name = "regression"
    metric = "r2"

    def labeled(self, targets):
        return ~targets.isnan().reshape(len(targets), -1).any(dim=1)

    def _pairs(self, outputs, targets):
        mask = self.labeled(targets)
        predicted = outputs.reshape(len(outputs), -1)[mask].double()
        return predicted, targets.reshape(len(targets), -1)[mask].double()

    def score(self, outputs, targets) -> float:
        return self.metrics(outputs, targets)["r2"]

    def metrics(self, outputs, targets) -> dict[str, float]:
        predicted, truth = self._pairs(outputs, targets)
        if len(truth) == 0:
            return {"mae": 0.0, "rmse": 0.0, "r2": 0.0}
        error = predicted - truth
        residual = (error**2).sum(dim=0)
        spread = ((truth - truth.mean(dim=0)) ** 2).sum(dim=0)
        # an output that does not vary: R² 1 when predicted exactly, else 0 (scikit-learn's rule)
        r2 = (1 - residual / spread.clamp_min(1e-12)).where(
            spread > 1e-12, (residual <= 1e-12).double()
        )
        return {
            "mae": float(error.abs().mean()),
            "rmse": float((error**2).mean().sqrt()),
            "r2": float(r2.mean()),
        }

    def hard_loss(self, outputs, targets, label_smoothing: float = 0.0, huber_delta=None):
        import torch.nn.functional as F

        mask = self.labeled(targets)
        safe = targets.nan_to_num(0.0).reshape(outputs.shape)
        if huber_delta is None:
            per_sample = F.mse_loss(outputs, safe, reduction="none")
        else:
            per_sample = F.huber_loss(outputs, safe, reduction="none", delta=huber_delta)
        return _masked_mean(per_sample.reshape(len(outputs), -1).mean(dim=1), mask)

    def unlabeled(self, targets):
        import torch

        return torch.full_like(targets, float("nan"))

    def strata(self, targets):
        import torch

        return torch.where(self.labeled(targets), 0, -1).to(torch.int64)


NEIGHBOUR_LIMIT = 5000  # samples compared all-to-all for nearest-neighbour agreement


@TASK_KINDS.register("embedding")
class Embedding(Regression):
    """Targets are the teacher's sentence embeddings (float rows, NaN: none); outputs are
    compared by direction, as retrieval compares embeddings."""

    name = "embedding"
    metric = "cosine"

    def score(self, outputs, targets) -> float:
        predicted, truth = self._pairs(outputs, targets)
        return float(cosines(predicted, truth).mean()) if len(truth) else 0.0

    def metrics(self, outputs, targets) -> dict[str, float]:
        predicted, truth = self._pairs(outputs, targets)
        if len(truth) == 0:
            return {"cosine": 0.0, "neighbour_agreement": 0.0}
        return {
            "cosine": float(cosines(predicted, truth).mean()),
            "neighbour_agreement": neighbour_agreement(predicted, truth),
        }

    def hard_loss(self, outputs, targets, label_smoothing: float = 0.0, huber_delta=None):
        mask = self.labeled(targets)
        safe = targets.nan_to_num(0.0).reshape(outputs.shape)
        return _masked_mean(1 - cosines(outputs, safe), mask)


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of two N x ... batches (flattened per row)."""
    import torch.nn.functional as F

    return F.cosine_similarity(a.reshape(len(a), -1), b.reshape(len(b), -1), dim=1, eps=1e-8)


def neighbour_agreement(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The share of samples whose nearest other sample (by cosine) is the same one under
    `outputs` as under `targets` (the first NEIGHBOUR_LIMIT samples; 0 for fewer than 2)."""
    import torch
    import torch.nn.functional as F

    count = min(len(outputs), NEIGHBOUR_LIMIT)
    if count < 2:
        return 0.0

    def nearest(rows: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(rows[:count].reshape(count, -1).double(), dim=1)
        similarity = unit @ unit.T
        similarity.fill_diagonal_(-torch.inf)
        return similarity.argmax(dim=1)

    return float((nearest(outputs) == nearest(targets)).double().mean())


def kind_of(targets: torch.Tensor) -> TaskKind:
    """The kind a split's targets belong to: float targets are regression outputs."""
    return TASK_KINDS.get("regression" if targets.is_floating_point() else "classification")
