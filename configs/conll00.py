"""CoNLL-2000 chunking, the paper's set-up (Lin et al. 2022, Table 1).

    --config configs/conll00.py:teacher | vanilla | kbest | posterior | structkd | efficient
CoNLL-2000 has no dev split: the last 10% of train becomes dev (results.json
notes say so). Set --config.data.source to a directory with train.txt and
test.txt (3 columns: word, POS, chunk tag), or hf:eriktks/conll2000.
"""

from jaxkd.presets import paper_conll


def get_config(arg: str = "teacher"):
    return paper_conll("hf:eriktks/conll2000", "chunk", arg)
