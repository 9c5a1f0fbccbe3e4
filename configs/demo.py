"""The demo's runs (bin/demo runs them all; this file lets you run one by hand).

    --config configs/demo.py:teacher
    --config configs/demo.py:efficient --config.teacher_workdir=runs/demo/teacher
"""

from jaxkd.presets import DEMO_MIN_BUCKET_LENGTH, DEMO_TEACHER_EPOCHS, STUDENTS, demo_config


def get_config(arg: str = "teacher"):
    if arg == "teacher":
        return demo_config("teacher", train_sentences=1000, epochs=DEMO_TEACHER_EPOCHS,
                           min_bucket_length=DEMO_MIN_BUCKET_LENGTH)
    return demo_config("student", arg, "", train_sentences=1000, epochs=STUDENTS["tiny"].demo_epochs,
                       unlabeled=True, min_bucket_length=DEMO_MIN_BUCKET_LENGTH)
