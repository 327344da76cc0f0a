"""bytepiece_rs: the BytePiece tokenizer with a Rust engine.

A drop-in replacement for the original ``bytepiece`` package (0.6.3): the same names, the same
model files and the same ids, much faster::

    from bytepiece_rs import Tokenizer
    tokenizer = Tokenizer()              # the bundled default model, or Tokenizer("my.model")
    ids = tokenizer.encode("Hello, 世界")
    assert tokenizer.decode(ids) == "Hello, 世界"

The classes are imported when first used (importing the package does not import NumPy yet), so
that the ``bytepiece`` command can set up NumPy's environment before NumPy loads
(:mod:`bytepiece_rs.__main__`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from ._core import UNICODE_VERSION, __version__
from ._signals import Terminated

if TYPE_CHECKING:
    from .tokenizer import DEFAULT_MODEL, Tokenizer
    from .trainer import Trainer, convert_to_bytepiece

__all__ = [
    "Tokenizer",
    "Trainer",
    "Terminated",
    "convert_to_bytepiece",
    "DEFAULT_MODEL",
    "UNICODE_VERSION",
    "__version__",
]

#: The names imported when first used, and their modules.
_LAZY = {
    "Tokenizer": ".tokenizer",
    "DEFAULT_MODEL": ".tokenizer",
    "Trainer": ".trainer",
    "convert_to_bytepiece": ".trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
