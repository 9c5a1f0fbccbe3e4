"""CoNLL-2003 English NER, the paper's set-up (Lin et al. 2022, Table 1).

    --config configs/conll03.py:teacher      BERT-base cased + CRF, lr 5e-5
    --config configs/conll03.py:METHOD       METHOD in vanilla, kbest, posterior,
                                             structkd, efficient: the first 3
                                             pre-trained layers, lr 2e-4
Set --config.data.source to a directory with eng.train/eng.testa/eng.testb
(or train.txt/valid.txt/test.txt), or hf:eriktks/conll2003 with a network,
and --config.teacher_workdir for students. Adam(W), batch 32, 10% warm-up then
linear decay, 15 epochs, dropout 0.3; lambda: 1 for every epoch but the last.
"""

from jaxkd.presets import paper_conll


def get_config(arg: str = "teacher"):
    return paper_conll("hf:eriktks/conll2003", "ner", arg)
