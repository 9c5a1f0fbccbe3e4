"""Part-of-speech tagging, XPOS (49 tags), on Universal Dependencies English-EWT
(jaxkd/corpora/ud_english_ewt: 12,544 / 2,001 / 2,077 sentences; CC BY-SA
4.0); scored by token accuracy.

    --config configs/ud_ewt_xpos.py:teacher              MiniLM-L6, all 6 layers
    --config configs/ud_ewt_xpos.py:METHOD               the BERT-tiny student
    --config configs/ud_ewt_xpos.py:minilm2/METHOD       the teacher's first 2 layers
        (METHOD: vanilla, efficient, kbest, posterior, structkd; set --config.teacher_workdir)
"""

from jaxkd.presets import corpus_config


def get_config(arg: str = "teacher"):
    return corpus_config("ud-ewt-xpos", arg)
