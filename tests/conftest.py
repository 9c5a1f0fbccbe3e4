"""Test-session settings shared by every test module."""

import jax

# The tests compare float32 computations against float32/float64 references. On
# a GPU, jax multiplies float32 matrices in TF32 by default (a 10-bit mantissa,
# ~1e-3 relative error): a speed setting that the tests must not measure.
# Products in bfloat16 are unaffected (their operands are bf16 by request).
# On a CPU this changes nothing.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")
