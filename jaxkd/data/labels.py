"""The label vocabulary: tag strings <-> integer ids, and its scheme.

Chunk tags (scheme ``"IOB2"``), in a stable order independent of the data's:
``"O"`` first (id 0, which is also the tag id of padding), then the chunk
types in sorted (code point) order, each as ``B-X`` then ``I-X``. The
vocabulary is *completed*: a type seen only as ``B-X`` in the training data
still gets ``I-X``, so that a multi-word chunk of a known type is never an
unseen tag and the CRF constraints are those of the full scheme.

Token tags (scheme ``"token"``, :data:`jaxkd.data.scheme.TOKEN`: parts of
speech): the tags seen in training, sorted by code point; id 0 (the first)
is also the padding id. Every transition is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from jaxkd.crf.constraints import Constraints
from jaxkd.data.errors import DataError
from jaxkd.data.scheme import OUTSIDE, TOKEN, bio_constraints, split_tag


@dataclass(frozen=True)
class LabelVocab:
    """An ordered tag set; build it with :meth:`from_tags` or :meth:`from_types`.

    Attributes:
      labels: the ``N`` tags; ``labels[i]`` has id ``i``.
      scheme: ``"IOB2"`` (chunks) or ``"token"`` (tags that are not chunks).
    """

    labels: tuple[str, ...]
    scheme: str = "IOB2"

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        object.__setattr__(self, "labels", labels)
        if self.scheme not in ("IOB2", TOKEN):
            raise ValueError(f"scheme must be 'IOB2' or {TOKEN!r}, not {self.scheme!r}")
        if not labels:
            raise ValueError("a label vocabulary needs at least one label")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")
        if self.chunks:
            if labels[0] != OUTSIDE:
                raise ValueError(f"the first label must be {OUTSIDE!r}, got {labels[:1]}")
            for label in labels:
                split_tag(label)  # raises ValueError for a malformed tag
        elif not all(isinstance(label, str) and label and not label.isspace() for label in labels):
            raise ValueError(f"token tags must be non-empty strings, got {labels}")
        object.__setattr__(self, "_index", {label: i for i, label in enumerate(labels)})

    @property
    def chunks(self) -> bool:
        """Whether the tags mark chunks (IOB2), scored by entity F1; else
        each word's tag stands alone, scored by token accuracy."""
        return self.scheme != TOKEN

    @classmethod
    def from_types(cls, types: Iterable[str]) -> LabelVocab:
        """``O`` then ``B-X``, ``I-X`` for each type ``X`` in sorted order."""
        labels = [OUTSIDE]
        for kind in sorted(set(types)):
            labels += [f"B-{kind}", f"I-{kind}"]
        return cls(tuple(labels))

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> LabelVocab:
        """The completed vocabulary of the chunk types among ``tags``."""
        return cls.from_types({kind for kind in map(_kind, set(tags)) if kind is not None})

    @classmethod
    def from_sentences(cls, sentences: Iterable, scheme: str = "IOB2") -> LabelVocab:
        """The vocabulary of the tags of ``sentences`` (objects with a ``tags``
        sequence, e.g. :class:`jaxkd.data.conll.Sentence`): completed for
        ``"IOB2"``, the sorted tags seen for ``"token"``."""
        tags = {tag for sentence in sentences for tag in sentence.tags}
        if scheme == TOKEN:
            return cls(tuple(sorted(tags)), TOKEN)
        return cls.from_tags(tags)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, tag: object) -> bool:
        return tag in self._index

    @property
    def types(self) -> tuple[str, ...]:
        """The chunk types, in vocabulary order (none for token tags)."""
        if not self.chunks:
            return ()
        return tuple(dict.fromkeys(k for k in map(_kind, self.labels) if k is not None))

    def index(self, tag: str) -> int:
        """The id of ``tag``; raises :class:`DataError` naming it if unknown."""
        try:
            return self._index[tag]
        except KeyError:
            raise DataError(f"tag {tag!r} is not in the label vocabulary {self.labels}") from None

    def encode(self, tags: Sequence[str], *, allow_unseen: bool = False) -> np.ndarray:
        """Tag strings -> ids ``[n] int32``.

        Args:
          tags: ``n`` tag strings.
          allow_unseen: map a tag outside the vocabulary to id 0 (``O``
            for chunks) instead of raising :class:`DataError`.
        """
        if allow_unseen:
            return np.asarray([self._index.get(t, 0) for t in tags], np.int32).reshape(-1)
        return np.asarray([self.index(t) for t in tags], np.int32).reshape(-1)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tag strings (accepts lists and integer arrays)."""
        out = []
        for i in np.asarray(list(ids) if not hasattr(ids, "shape") else ids).reshape(-1):
            if not 0 <= int(i) < len(self.labels):
                raise DataError(f"tag id {int(i)} is outside 0..{len(self.labels) - 1}")
            out.append(self.labels[int(i)])
        return out

    def constraints(self) -> Constraints:
        """The allowed CRF moves of this tag set: ``transitions [N, N]``,
        ``start [N]``, ``end [N]`` bool; IOB2's
        (:func:`jaxkd.data.scheme.bio_constraints`), or all allowed for
        token tags."""
        if not self.chunks:
            return Constraints.none(len(self.labels))
        return bio_constraints(list(self.labels), scheme=self.scheme)

    def to_json(self) -> str:
        """A JSON string to save beside a model: ``{"labels": [...], "scheme": ...}``."""
        return json.dumps({"labels": list(self.labels), "scheme": self.scheme})

    @classmethod
    def from_json(cls, text: str) -> LabelVocab:
        """Inverse of :meth:`to_json`; keeps the saved order exactly (a save
        without a scheme is IOB2)."""
        try:
            data = json.loads(text)
            labels = data["labels"]
            scheme = data.get("scheme", "IOB2")
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise DataError(f"not a saved label vocabulary ({err}): {text[:80]!r}") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DataError(f"'labels' must be a list of strings, got {labels!r}")
        try:
            return cls(tuple(labels), scheme)
        except ValueError as err:
            raise DataError(f"bad saved label vocabulary: {err}") from None


def _kind(tag: str) -> str | None:
    try:
        return split_tag(tag)[1]
    except ValueError as err:
        raise DataError(str(err)) from None
