"""The Broad Twitter Corpus (jaxkd/corpora/btc: 6,338 / 1,000 / 2,001 tweets,
PER / ORG / LOC, its README's recommended split; CC BY 4.0).

    --config configs/btc.py:teacher                    MiniLM-L6, all 6 layers
    --config configs/btc.py:METHOD                     the BERT-tiny student
    --config configs/btc.py:minilm2/METHOD             the teacher's first 2 layers
        (METHOD: vanilla, efficient, kbest, posterior, structkd; set --config.teacher_workdir)
"""

from jaxkd.presets import corpus_config


def get_config(arg: str = "teacher"):
    return corpus_config("btc", arg)
