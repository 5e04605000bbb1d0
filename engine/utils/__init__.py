"""torch.utils's counterpart: engine.utils.data (Dataset, TensorDataset, DataLoader); and as_torch(), a block
in which `import torch` imports the engine (engine.utils.torch_alias)."""
from . import data  # noqa: F401
from .torch_alias import as_torch  # noqa: F401
