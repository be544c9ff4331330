"""The optax warmup + cosine schedule keeps the values of the hand-joined one it replaced."""
import numpy as np
import optax
import pytest

from scaling_jax import optim


def _hand_joined(peak_lr, final_lr, warmup_steps, total_steps):
  """The schedule optim.py built by hand before it used optax's (the reference)."""
  warmup_steps = max(int(warmup_steps), 1)
  decay_steps = max(int(total_steps) - warmup_steps, 1)
  return optax.join_schedules([
      optax.linear_schedule(0.0, peak_lr, warmup_steps),
      optax.cosine_decay_schedule(peak_lr, decay_steps, alpha=final_lr / peak_lr)
      if peak_lr > 0 else optax.constant_schedule(0.0),
  ], boundaries=[warmup_steps])


@pytest.mark.parametrize("peak, final, warmup, total", [
    (3e-3, 3e-5, 8, 40),
    (1e-2, 1e-3, 1, 10),
    (3e-3, 0.0, 5, 17),  # decays to zero
    (3e-3, 3e-3, 4, 12),  # final = peak: flat after warmup
    (0.0, 0.0, 3, 9),  # zero LR: 0 / 0 must not give NaN
    (3e-3, 3e-5, 0, 20),  # no warmup: still one step at 0 (the old clamp)
    (3e-3, 3e-5, 20, 20),  # warmup = total: one decay step after it
    (3e-3, 3e-5, 30, 20),  # warmup > total
    (3e-3, 3e-5, 1, 1),
])
def test_equals_the_hand_joined_schedule_at_every_step(peak, final, warmup, total):
  steps = np.arange(max(warmup, total) + 5)
  want = np.asarray([_hand_joined(peak, final, warmup, total)(s) for s in steps])
  got = np.asarray([optim.schedule(peak, final, warmup, total)(s) for s in steps])
  assert np.all(np.isfinite(got))
  np.testing.assert_array_equal(got, want)
