"""jaxkd: efficient sub-structured knowledge distillation for BERT-CRF taggers.

``jaxkd.load_tagger(workdir)`` labels text with a trained run (see
:mod:`jaxkd.labeling`); the command lines are ``python -m jaxkd.train``,
``jaxkd.predict`` and ``jaxkd.demo``.
"""

__all__ = ["load_tagger"]


def __getattr__(name):
    # Lazy, so that `import jaxkd` (and every `python -m jaxkd.*`) stays cheap.
    if name == "load_tagger":
        from jaxkd.labeling import load_tagger

        return load_tagger
    raise AttributeError(f"module 'jaxkd' has no attribute {name!r}")
