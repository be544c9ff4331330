"""The "Read with care" flags: each fires on the number it names, and only then."""
import types

import pytest

from scaling_jax.report import caveats


class _Law:
  def __init__(self, intervals, residual_df=4):
    self._intervals = intervals
    self.boot = types.SimpleNamespace(residual_df=residual_df)

  def param_intervals(self, level):
    del level
    return self._intervals


def _interval(value, lo, hi):
  return {"value": value, "lo": lo, "hi": hi}


SANE_LOSS = {"E": _interval(1.8, 1.6, 2.0), "a": _interval(200, 100, 300),
             "b": _interval(300, 150, 500), "eta": _interval(0.14, 0.1, 0.2)}
SANE_ERR = {"eps": _interval(0.85, 0.8, 0.9), "k": _interval(2.0, 1.5, 3.0),
            "gamma": _interval(0.7, 0.5, 0.9)}
SANE_TARGET = dict(run="big", loss_pred=2.5, loss_lo=2.45, loss_hi=2.55,
                   err_pred=0.45, err_lo=0.42, err_hi=0.48)


def _study(loss=None, err=None, target=None, m_star=(20.0, 10.0, 60.0), df=4):
  fit_runs = [dict(N=n, M=m, flops=6 * n * n * m, used_in_fit=True)
              for n, m in ((1e6, 20), (4e6, 20), (1.6e7, 20), (1e6, 320))]
  return types.SimpleNamespace(
      level=0.95, loss=_Law(dict(SANE_LOSS, **(loss or {})), df),
      error=_Law(dict(SANE_ERR, **(err or {}))), predictions=fit_runs,
      targets=[dict(SANE_TARGET, **(target or {}))], checkpoint_fit=None,
      compute_optimal=types.SimpleNamespace(multiplier=m_star))


def test_a_well_determined_study_raises_nothing():
  assert caveats.caveats(_study()) == []


def test_an_irreducible_loss_interval_below_zero_is_flagged_with_a_fix_for_this_design():
  found = caveats.caveats(_study(loss={"E": _interval(0.8, -8.07, 1.3)}, df=1))
  assert len(found) == 1
  assert "E = 0.8" in found[0] and "-8.07 < 0" in found[0]
  # The fix names this design: three sizes, and its one residual degree of freedom.
  assert "over 3 sizes" in found[0] and "(now 1)" in found[0]


def test_a_negative_irreducible_loss_says_what_the_plot_shows_instead():
  found = caveats.caveats(_study(loss={"E": _interval(-0.49, -11.1, 12.1)}))
  assert len(found) == 1 and "E = -0.49" in found[0] and "loss itself" in found[0]
  assert "To fix" in found[0]


def test_an_exponent_interval_past_zero_is_flagged_but_its_point_is_sanity_s_job():
  found = caveats.caveats(_study(loss={"eta": _interval(0.14, -0.002, 0.3)}))
  assert len(found) == 1 and "exponent eta" in found[0]
  # A point estimate outside (0, 1) is laws/sanity.py's warning, not repeated here.
  assert caveats.caveats(_study(loss={"eta": _interval(-0.1, -0.3, 0.1)})) == []


@pytest.mark.parametrize("column,lo,hi,edge", [("err", 0.0, 0.6, "(0)"),
                                                ("err", 0.3, 1.0, "(1)"),
                                                ("loss", 0.0, 3.2, "(0)")])
def test_an_interval_clipped_at_the_edge_of_the_possible_range_is_uninformative(
    column, lo, hi, edge):
  found = caveats.caveats(_study(target={f"{column}_lo": lo, f"{column}_hi": hi}))
  assert len(found) == 1 and edge in found[0] and "big" in found[0]


def test_an_interval_near_but_not_at_the_edge_is_not_called_clipped():
  assert caveats.caveats(_study(target={"err_lo": 0.40, "err_hi": 0.5})) == []


def test_a_very_wide_prediction_interval_is_flagged():
  found = caveats.caveats(_study(target={"loss_lo": 1.0, "loss_hi": 4.0}))
  assert len(found) == 1 and "wider than +-50%" in found[0]


def test_a_compute_optimal_multiplier_spanning_decades_is_uninformative():
  found = caveats.caveats(_study(m_star=(0.1, 0.0013, 13.0)))
  assert len(found) == 1 and "4.0 decades" in found[0] and "{20, 320}" in found[0]
  # A factor of 6 (10 to 60) is an allocation one can act on.
  assert caveats.caveats(_study(m_star=(20.0, 10.0, 60.0))) == []


def test_an_error_floor_interval_leaving_the_unit_interval_is_flagged():
  found = caveats.caveats(_study(err={"eps": _interval(0.95, 0.8, 1.2)}))
  assert len(found) == 1 and "eps" in found[0]
