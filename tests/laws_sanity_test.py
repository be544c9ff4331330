"""premise_warnings: a law contradicting its own premise is flagged; clean fits are not."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.laws import sanity

C = np.array([1e16, 8e16, 7e17, 3e18, 2e19, 2e17, 5e18])
M = np.array([20.0, 20.0, 20.0, 20.0, 20.0, 320.0, 80.0])
CLEAN = {
    forms.OVERTRAINING: ({"C": C, "M": M}, dict(E=1.8, a=210.0, b=370.0, eta=0.135)),
    forms.CHINCHILLA: ({"N": np.geomspace(1e7, 1e9, 7), "D": np.geomspace(1e8, 5e10, 7)[::-1]},
                       dict(E=1.7, A=400.0, B=900.0, alpha=0.34, beta=0.28)),
    forms.POWER: ({"X": np.geomspace(1e6, 1e9, 7)}, dict(E=1.5, A=400.0, alpha=0.3)),
    forms.DOWNSTREAM: ({"L": np.linspace(2.6, 5.5, 7)}, dict(eps=0.86, k=2.2, gamma=0.71)),
}


def _values(law, x, named):
  with jax.enable_x64(True):
    params = jnp.asarray([named[n] for n in law.param_names], dtype=jnp.float64)
    return np.asarray(law(params, fit_lib.as_inputs(x)))


def _result(law, **changes):
  """A FitResult holding the clean parameters of `law` with `changes` applied."""
  x, named = CLEAN[law]
  named = dict(named, **changes)
  y = _values(law, x, CLEAN[law][1])
  return fit_lib.FitResult(
      law=law, params=np.array([named[n] for n in law.param_names]), objective=0.0, x=x,
      y=y, weights=np.ones_like(y), starts=fit_lib.default_starts(law),
      settings=fit_lib.FitSettings(), converged=True)


@pytest.mark.slow
@pytest.mark.parametrize("law", list(CLEAN))
def test_clean_fits_raise_no_warning(law):
  x, named = CLEAN[law]
  assert sanity.premise_warnings(fit_lib.fit(law, x, _values(law, x, named))) == []
  assert sanity.premise_warnings(_result(law)) == []


@pytest.mark.parametrize("law,changes,words", [
    (forms.OVERTRAINING, dict(a=-5.0), ["a = -5", "compute"]),
    (forms.OVERTRAINING, dict(b=0.0), ["b = 0", "compute"]),
    (forms.OVERTRAINING, dict(eta=1.7), ["eta = 1.7", "(0, 1)"]),
    (forms.OVERTRAINING, dict(eta=-0.1), ["eta = -0.1", "(0, 1)"]),
    (forms.OVERTRAINING, dict(E=-0.4), ["E = -0.4", "negative"]),
    (forms.CHINCHILLA, dict(A=-1.0), ["A = -1", "compute"]),
    (forms.CHINCHILLA, dict(beta=0.0), ["beta = 0", "(0, 1)"]),
    (forms.CHINCHILLA, dict(E=-2.0), ["E = -2", "negative"]),
    (forms.POWER, dict(A=-3.0), ["A = -3", "compute"]),
    (forms.POWER, dict(alpha=2.5), ["alpha = 2.5", "(0, 1)"]),
    (forms.POWER, dict(E=-1.0), ["E = -1", "negative"]),
    (forms.DOWNSTREAM, dict(k=-0.5), ["k = -0.5", "error"]),
    (forms.DOWNSTREAM, dict(gamma=0.0), ["gamma = 0", "error"]),
    (forms.DOWNSTREAM, dict(eps=1.3), ["eps = 1.3", "(0, 1]"]),
    (forms.DOWNSTREAM, dict(eps=0.0), ["eps = 0", "(0, 1]"]),
    (forms.OVERTRAINING, dict(eta=np.nan), ["eta", "not a finite number"]),
])
def test_each_contradiction_is_flagged_once_by_name(law, changes, words):
  warnings = sanity.premise_warnings(_result(law, **changes))
  assert len(warnings) == 1, warnings
  for word in words:
    assert word in warnings[0], (word, warnings[0])


def test_a_fit_to_loss_rising_with_compute_is_flagged():
  x = {"X": np.geomspace(1e6, 1e9, 7)}
  y = 2.0 - 40.0 * x["X"] ** -0.3  # rises with X: not a scaling law at all
  warnings = sanity.premise_warnings(fit_lib.fit(forms.POWER, x, y))
  assert any("A = -40" in w for w in warnings), warnings


def test_a_fit_to_error_rising_as_loss_falls_is_flagged():
  loss = np.linspace(2.6, 5.5, 7)
  err = 0.2 + 0.5 * np.exp(-0.7 * loss)  # error grows as loss falls
  warnings = sanity.premise_warnings(fit_lib.fit(forms.DOWNSTREAM, {"L": loss}, err))
  assert any(w.startswith("k = -0.5") for w in warnings), warnings
