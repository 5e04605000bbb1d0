"""Probability distributions with PyTorch's names (`torch.distributions`): Bernoulli, Categorical,
Multinomial and Normal, with sample(sample_shape), log_prob, mean, variance, stddev and entropy (Multinomial
has no entropy). Samples come from the engine's generator (engine.manual_seed); log_prob and entropy are
differentiable in the parameters. See distribution.py for shapes and validation."""
from . import bernoulli, categorical, distribution, multinomial, normal  # noqa: F401
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .multinomial import Multinomial
from .normal import Normal

__all__ = ["Distribution", "Bernoulli", "Categorical", "Multinomial", "Normal"]
