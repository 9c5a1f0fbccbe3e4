"""WNUT-17 Emerging Entities (jaxkd/corpora/wnut17: 3,394 / 1,009 / 1,287
sentences of user-generated text, 6 entity types; CC BY 4.0).

    --config configs/wnut17.py:teacher                 MiniLM-L6, all 6 layers
    --config configs/wnut17.py:METHOD                  the BERT-tiny student
    --config configs/wnut17.py:minilm2/METHOD          the teacher's first 2 layers
        (METHOD: vanilla, efficient, kbest, posterior, structkd; set --config.teacher_workdir)
"""

from jaxkd.presets import corpus_config


def get_config(arg: str = "teacher"):
    return corpus_config("wnut17", arg)
