"""Allowed-transition constraints for linear-chain CRFs.

A :class:`Constraints` holds three boolean masks. Every kernel in
:mod:`jaxkd.crf` takes ``constraints=`` and replaces the scores of disallowed
moves by the finite large negative :data:`jaxkd.crf.NEG`, so that a sequence
using one is (in practice) impossible but every value and gradient stays
finite.

:func:`bio_constraints` derives the masks from label names in the IOB2 (BIO)
or IOBES schemes.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np


class Constraints(NamedTuple):
    """Allowed moves of a linear-chain CRF (a JAX pytree).

    Attributes:
      transitions: ``[N, N] bool``; ``transitions[i, j]`` allows tag ``i``
        followed by tag ``j``.
      start: ``[N] bool``; tags allowed at the first position.
      end: ``[N] bool``; tags allowed at the last position.
    """

    transitions: jnp.ndarray
    start: jnp.ndarray
    end: jnp.ndarray

    @classmethod
    def none(cls, num_tags: int) -> "Constraints":
        """Constraints that allow everything, for ``num_tags`` tags."""
        return cls(
            jnp.ones((num_tags, num_tags), bool),
            jnp.ones((num_tags,), bool),
            jnp.ones((num_tags,), bool),
        )


def _split(label: str) -> tuple[str, str | None]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``."""
    if label == "O":
        return "O", None
    prefix, sep, kind = label.partition("-")
    if not sep or not kind or prefix not in {"B", "I", "E", "S"}:
        raise ValueError(
            f"label {label!r} is not 'O' or PREFIX-TYPE with PREFIX in B, I, E, S"
        )
    return prefix, kind


def bio_constraints(labels: Sequence[str], scheme: str = "IOB2") -> Constraints:
    """Builds the allowed moves of a tagging scheme from its label names.

    IOB2 (BIO): a sequence may not start with ``I-X``; ``I-X`` may only follow
    ``B-X`` or ``I-X`` (so no ``O -> I-X`` and no ``B-X -> I-Y``).

    IOBES: additionally, ``B-X``/``I-X`` must be followed by ``I-X``/``E-X`` and
    may not end a sequence; ``E-X``/``S-X``/``O`` may be followed only by
    ``O``, ``B-*`` or ``S-*``.

    Args:
      labels: ``N`` label names, e.g. ``["O", "B-PER", "I-PER"]``.
      scheme: ``"IOB2"`` (alias ``"BIO"``) or ``"IOBES"``.

    Returns:
      :class:`Constraints` with ``[N, N]``, ``[N]``, ``[N]`` boolean masks.
    """
    scheme = scheme.upper()
    if scheme == "BIO":
        scheme = "IOB2"
    if scheme not in {"IOB2", "IOBES"}:
        raise ValueError(f"unknown tagging scheme {scheme!r}; use 'IOB2' or 'IOBES'")
    parts = [_split(label) for label in labels]
    if scheme == "IOB2":
        bad = [lab for lab, (p, _) in zip(labels, parts) if p in {"E", "S"}]
        if bad:
            raise ValueError(f"labels {bad} are not IOB2; pass scheme='IOBES'")
    n = len(labels)
    trans = np.ones((n, n), bool)
    start = np.ones((n,), bool)
    end = np.ones((n,), bool)
    for j, (pj, kj) in enumerate(parts):
        inside = pj in {"I", "E"}  # must continue an open entity of type kj
        if inside:
            start[j] = False
        if scheme == "IOBES" and pj in {"B", "I"}:
            end[j] = False
        for i, (pi, ki) in enumerate(parts):
            if scheme == "IOB2":
                ok = not inside or (pi in {"B", "I"} and ki == kj)
            else:
                opened = pi in {"B", "I"}  # i leaves an entity open
                if opened:
                    ok = inside and ki == kj
                else:
                    ok = not inside
            trans[i, j] = ok
    return Constraints(jnp.asarray(trans), jnp.asarray(start), jnp.asarray(end))
