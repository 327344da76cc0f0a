"""bytepiece_rs: the BytePiece tokenizer with a Rust engine.

A drop-in replacement for the original ``bytepiece`` package (0.6.3): the same names, the same
model files and the same ids, much faster::

    from bytepiece_rs import Tokenizer
    tokenizer = Tokenizer()              # the bundled default model, or Tokenizer("my.model")
    ids = tokenizer.encode("Hello, 世界")
    assert tokenizer.decode(ids) == "Hello, 世界"
"""

from ._core import UNICODE_VERSION, __version__
from ._signals import Terminated
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
