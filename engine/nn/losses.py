"""Loss modules the book uses that engine.nn.layers lacks: NLLLoss (after LogSoftmax: together they are
CrossEntropyLoss, which engine.nn.layers has, as MSELoss)."""
from .. import functional as F
from .module import Module

__all__ = ["NLLLoss"]


class NLLLoss(Module):
    """F.nll_loss as a module: NLLLoss(weight=None, ignore_index=-100, reduction='mean')(log_probs, target)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)
