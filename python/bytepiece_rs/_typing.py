"""What the exporters (``convert``, ``integrations``, ``show``) need of a tokenizer.

:class:`bytepiece_rs.Tokenizer` has all of it. The exporters type their argument with this
structural type instead of importing the class, which offers them as methods
(``convert_to_sentencepiece``, ``to_transformers``, ``to_html``...): the imports then run one
way, from the tokenizer to its exporters.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Protocol, Tuple, Union

import numpy as np


class TokenizerLike(Protocol):
    """A BytePiece tokenizer: a :class:`bytepiece_rs.Tokenizer`."""

    @property
    def special_tokens(self) -> Dict[str, int]: ...

    @property
    def vocab_size(self) -> int: ...

    def counts(self) -> List[int]: ...

    def scores(self) -> List[float]: ...

    def encode(self, text: Union[str, bytes], *args: Any, **kwargs: Any) -> List[int]: ...

    def encode_batch_numpy(
        self, texts: Iterable[Union[str, bytes]], *args: Any, **kwargs: Any
    ) -> Tuple[np.ndarray, np.ndarray]: ...

    def id_to_piece(self, id: int) -> Union[bytes, str]: ...
