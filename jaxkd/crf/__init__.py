"""Pure, jit- and vmap-compatible linear-chain CRF kernels.

Shapes are batch-first: ``emissions [B, L, N]``, ``mask [B, L]`` (boolean
prefix mask), ``transitions [N, N]`` (tag i then tag j), ``start [N]``,
``end [N]``. Everything is computed in float32. Padded positions of every
output are zero, and an all-padding row gives finite zeros. One CRF's four
score arrays travel together as a :class:`CRFScores`.
"""

from jaxkd.crf._common import NEG
from jaxkd.crf.constraints import Constraints
from jaxkd.crf.decode import kbest, viterbi
from jaxkd.crf.marginals import marginals
from jaxkd.crf.partition import ALGORITHMS, log_partition
from jaxkd.crf.scores import CRFScores, sequence_score, substructure_scores

__all__ = [
    "ALGORITHMS",
    "NEG",
    "CRFScores",
    "Constraints",
    "kbest",
    "log_partition",
    "marginals",
    "sequence_score",
    "substructure_scores",
    "viterbi",
]
