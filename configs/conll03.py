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

from jaxkd.config import base, paper_student


def get_config(arg: str = "teacher"):
    c = base()
    c.data.source = "hf:eriktks/conll2003"
    c.data.task = "ner"
    c.data.scheme = "auto"  # the original files are IOB1
    c.model.checkpoint = "bert-base-cased"
    c.train.epochs = 15
    c.train.batch_size = 32
    c.train.encoder_lr = 5e-5
    c.model.dropout = 0.3
    if arg == "teacher":
        return c
    return paper_student(c, arg, "")
