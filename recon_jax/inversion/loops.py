"""Running a jitted per-iteration update: on device or driven from Python.

`loop` picks how the iterations run (the reconstruction configs' `loop`):
  'while'  - one jitted lax.while_loop that stops as soon as every run has
             converged or the cap is hit (no host round trips);
  'scan'   - one jitted lax.scan over the full cap (converged runs are
             masked, so it always costs the cap);
  'python' - a jitted single iteration called from Python, checking for
             early stop every `check_every` iterations.
All three give the same result. Speed (benchmarks/bench_inversion.py, 2-core
XLA:CPU, 48 x 4 runs from layer 9): for backprop 'python' ran 5.6x as fast
as 'while' or 'scan' (XLA:CPU runs a convolution's forward and backward
inside a loop body far slower than at the top level); for annealing, one
forward pass per step, 'scan' was 1.06x as fast as 'python'. 'auto' (the
backprop default) is 'python' on CPU and 'while' elsewhere (not measured on
accelerators: there the host round trip per step is the cost to avoid).
"""
from typing import Any, Callable

import jax
import jax.numpy as jnp

LOOPS = ("while", "scan", "python")


def default_loop() -> str:
  """The loop mode the benchmark found fastest on this backend."""
  return "python" if jax.default_backend() == "cpu" else "while"


def check_loop(loop: str) -> str:
  if loop == "auto":
    return default_loop()
  if loop not in LOOPS:
    raise ValueError(f"loop must be one of {LOOPS} or 'auto', got {loop!r}")
  return loop


def run_loop(step: Callable[[Any], Any], running: Callable[[Any], jax.Array],
             state: Any, num_iters: int, loop: str,
             check_every: int = 16) -> Any:
  """Applies `step` up to `num_iters` times to `state`.

  Args:
    step: state -> state, one iteration; must be a no-op for finished runs.
    running: state -> bool scalar, False once nothing is left to do.
    state: the initial state (a pytree of arrays).
    num_iters: the cap.
    loop: 'while', 'scan' or 'python' (see the module docstring). For
      'while' and 'scan' call run_loop inside jit; for 'python' call it
      outside jit with a jitted `step`.
    check_every: 'python' only: iterations between early-stop checks.

  Returns:
    The final state.
  """
  loop = check_loop(loop)
  if loop == "while":
    def cond(carry):
      i, s = carry
      return (i < num_iters) & running(s)
    _, state = jax.lax.while_loop(cond, lambda c: (c[0] + 1, step(c[1])),
                                  (jnp.int32(0), state))
    return state
  if loop == "scan":
    state, _ = jax.lax.scan(lambda s, _: (step(s), None), state, None,
                            length=num_iters)
    return state
  for i in range(num_iters):
    if i % check_every == 0 and i and not bool(running(state)):
      break
    state = step(state)
  return state
