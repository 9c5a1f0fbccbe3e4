"""CoNLL-2000 chunking, the paper's set-up (Lin et al. 2022, Table 1).

    --config configs/conll00.py:teacher | vanilla | kbest | posterior | structkd | efficient
CoNLL-2000 has no dev split: the last 10% of train becomes dev (results.json
notes say so). Set --config.data.source to a directory with train.txt and
test.txt (3 columns: word, POS, chunk tag), or hf:eriktks/conll2000.
"""

from jaxkd.config import base, paper_student


def get_config(arg: str = "teacher"):
    c = base()
    c.data.source = "hf:eriktks/conll2000"
    c.data.task = "chunk"
    c.model.checkpoint = "bert-base-cased"
    c.train.epochs = 15
    c.train.batch_size = 32
    c.train.encoder_lr = 5e-5
    c.model.dropout = 0.3
    if arg == "teacher":
        return c
    return paper_student(c, arg, "")
