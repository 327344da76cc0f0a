"""A griffe extension for the API reference of the documentation site (mkdocs.yml loads it).

The docstrings name other objects with reST roles (``:meth:`encode```, ``:class:`Tokenizer```),
which Markdown would show as they are: each becomes a code span of the name (``encode``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:meth|func|class|attr|mod|data|exc|obj):`~?([^`]+)`")


class ReSTRoles(griffe.Extension):
    """Rewrites the roles of every docstring as the objects are loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
