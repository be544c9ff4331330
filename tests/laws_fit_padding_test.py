"""Padded fits: the solver compiled for padded shapes gives the unpadded answer.

fit.solve_many pads points (weight zero) and data sets (dropped) to a few sizes so
that fits of nearby sizes share one compiled program; a padded point that weighed
anything, or a padded data set that leaked into the results, would move a fit.
"""
import numpy as np
import pytest

from scaling_jax.laws import compile_keys
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

RNG = np.random.default_rng(0)
C = np.geomspace(1e17, 1e20, 7)
M = np.array([20.0, 20.0, 80.0, 20.0, 320.0, 20.0, 40.0])
TRUTH = np.array([1.8, 200.0, 350.0, 0.14])


def test_padded_sizes():
  assert [compile_keys.padded_size(k) for k in (0, 1, 2, 3, 5, 8, 9, 64, 65, 1000)] == [
      0, 1, 2, 4, 8, 8, 16, 64, 128, 1024]


@pytest.mark.parametrize("robust", [False, True])
def test_a_padded_solve_equals_the_unpadded_one(robust):
  law, x = forms.OVERTRAINING, {"C": C, "M": M}
  clean = np.asarray(law(TRUTH, x))
  ys = clean * (1 + 0.01 * RNG.standard_normal((3, len(C))))  # 3 sets of 7 points
  ws = RNG.uniform(0.5, 1.5, ys.shape)
  settings = fit_lib.FitSettings(robust=robust)
  padded = fit_lib.solve_many(law, x, ys, ws, settings=settings)  # 4 sets x 8 points
  assert padded.params.shape == (3, 4) and padded.objective.shape == (3,)
  for b in range(3):  # each set alone: 1 set x 8 points, another compiled shape
    alone = fit_lib.solve_many(law, x, ys[b:b + 1], ws[b:b + 1], settings=settings)
    np.testing.assert_allclose(padded.params[b], alone.params[0], rtol=1e-7)
  # Already at the padded shape (8 points, 4 sets): an eighth point elsewhere, weight 0.
  x8 = {"C": np.append(C, 3e20), "M": np.append(M, 20.0)}
  ys8 = np.concatenate([ys, ys[:, :1]], axis=1)  # any value: it weighs zero
  ws8 = np.concatenate([ws, np.zeros((3, 1))], axis=1)
  ys8 = np.concatenate([ys8, ys8[:1]])
  ws8 = np.concatenate([ws8, ws8[:1]])
  reference = fit_lib.solve_many(law, x8, ys8, ws8, settings=settings)
  np.testing.assert_allclose(padded.params, reference.params[:3], rtol=1e-7)


def test_bounds_that_differ_in_value_share_one_compile_and_keep_their_values():
  # The solver is compiled per bound pattern (which parameters are bounded); the
  # values reach it as arrays. A key that kept the values compiled once per value;
  # one that lost them would hold E at the pattern's placeholder instead.
  law, x = forms.OVERTRAINING, {"C": C, "M": M}
  ys = np.asarray(law(TRUTH, x))[None]  # E = 1.8 exactly
  ws = np.ones_like(ys)
  compiled = fit_lib._fit_many_jit._cache_size  # pylint: disable=protected-access
  sizes = []
  for floor in (2.0, 2.5):  # above the truth: each floor binds
    settings = fit_lib.FitSettings(bounds=(("E", floor, 10.0),))
    params = fit_lib.solve_many(law, x, ys, ws, settings=settings).params[0]
    assert params[law.param_names.index("E")] == pytest.approx(floor, abs=1e-9)
    sizes.append(compiled())
  assert sizes[1] == sizes[0]  # the second floor compiled nothing (the first may have)
