"""Test-session settings shared by every test module."""

import os

import jax

# The tests compare float32 computations against float32/float64 references. On
# a GPU, jax multiplies float32 matrices in TF32 by default (a 10-bit mantissa,
# ~1e-3 relative error): a speed setting that the tests must not measure.
# Products in bfloat16 are unaffected (their operands are bf16 by request).
# On a CPU this changes nothing.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")
    os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"  # and in the tests' subprocesses


# ---------------------------------------------------------------------------
# A tiny trained teacher, shared by every test module of a session (worker)
# ---------------------------------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """(root, tiny BERT checkpoint, tiny corpus) in a session directory."""
    from tests.runs import write_corpus
    from tests.tiny_bert import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("train")
    ckpt = write_tiny_checkpoint(root / "bert", num_layers=2, max_positions=64)
    data = write_corpus(root / "data")
    return root, ckpt, data


@pytest.fixture(scope="session")
def teacher(assets):
    """(workdir, results) of a 3-epoch tiny teacher run with phase timing and TensorBoard on."""
    from jaxkd.training.loop import run
    from tests.runs import tiny_config

    root, ckpt, data = assets
    workdir = root / "teacher"
    changes = {"train.epochs": 3, "train.head_lr": 3e-2, "timing.forward_batches": -1, "log.tensorboard": True}
    results = run(tiny_config(ckpt, data, **changes), workdir)
    return workdir, results


@pytest.fixture(scope="session")
def student(assets, teacher):
    """(workdir, results) of a 1-layer efficient student of the tiny teacher."""
    from jaxkd.training.loop import run
    from tests.runs import tiny_config

    root, ckpt, data = assets
    workdir = root / "efficient"
    cfg = tiny_config(
        ckpt,
        data,
        **{"mode": "student", "teacher_workdir": str(teacher[0]), "distill.method": "efficient", "model.num_layers": 1},
    )
    return workdir, run(cfg, workdir)
