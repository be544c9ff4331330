"""The sweep's time left, from what its units have measured so far.

A unit's wall time is a fixed cost (process start, compilation, in-loop evaluations,
checkpoint writes) plus its training FLOPs over its training rate. Both are measured,
not assumed: the rate from a unit's own step log (`train_metrics.jsonl`, tokens/s
between logged steps), the fixed cost from finished units (wall time minus the time
their steps took at their measured rate) or, before any has finished, from how long
the running unit took to log its first step. Units not started yet borrow the rate of
the measured unit nearest in size, since FLOP/s on one machine depends on model size
far less than tokens/s does. The units left are then laid out on the launcher's
parallel slots in launch order. Before anything is measured the ETA is unknown (None)
rather than a guess.

When the start-up probe (launch/probe.py) has timed this machine, every unit has an
expected fixed cost and an expected FLOP rate for its own shape, which is better than
borrowing a smaller unit's rate (on a CPU a 15k-parameter model runs at a fraction
of the FLOP/s of a 235k one). The ETA then is those expectations scaled by how much
slower than expected the units have really run so far (`slowdown`).
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import statistics

from scaling_jax.runs import table as runs_table

# Throughput between logged steps jumps with evaluations and checkpoint writes (and a
# busy machine); the median of the last few readings follows the unit's steady rate.
RECENT_READINGS = 5


@dataclasses.dataclass
class UnitClock:
  """What the launcher knows of one unit's timing, this launch."""
  name: str
  num_params: float
  flops: float                      # training FLOPs of the whole unit (6 N D)
  tokens_at_launch: float = 0.0     # tokens already trained when this launch began
  started: float | None = None      # wall times of this launch's start and end
  ended: float | None = None
  tokens_done: float = 0.0          # latest step-log tokens (or checkpoint / records)
  first_step_at: float | None = None  # wall time of this launch's first logged step
  rates: list[float] = dataclasses.field(default_factory=list)  # tokens/s readings
  # The start-up probe's expectations (launch/probe.py), before anything is measured:
  expected_fixed: float | None = None   # seconds outside training steps
  expected_rate: float | None = None    # training FLOP/s

  @property
  def tokens(self) -> float:
    return runs_table.tokens_of(self.num_params, self.flops)

  def flops_of(self, tokens: float) -> float:
    """Training FLOPs of `tokens` tokens of this unit, as the runs table counts them."""
    return runs_table.training_flops(self.num_params, tokens)

  def flop_rate(self) -> float | None:
    """Training FLOP/s from the recent step-log readings; None before any."""
    readings = [r for r in self.rates[-RECENT_READINGS:] if r and r > 0]
    if not readings:
      return None
    return self.flops_of(statistics.median(readings))


def fixed_cost(clocks: list[UnitClock]) -> float | None:
  """Median seconds a unit spends outside its training steps; None if unmeasured."""
  costs = []
  for c in clocks:
    rate = c.flop_rate()
    if c.ended is None or c.started is None or rate is None:
      continue
    trained = c.flops_of(max(c.tokens - c.tokens_at_launch, 0.0))
    costs.append(max(c.ended - c.started - trained / rate, 0.0))
  if costs:
    return statistics.median(costs)
  # Nothing finished yet: the time to a running unit's first step is start-up and
  # compilation, the bulk of the fixed cost of small units (evaluations come later).
  waits = [c.first_step_at - c.started for c in clocks
           if c.first_step_at is not None and c.started is not None and c.ended is None]
  return statistics.median(waits) if waits else None


def _nearest_rate(clock: UnitClock, measured: list[UnitClock]) -> float:
  nearest = min(measured, key=lambda m: abs(math.log(m.num_params / clock.num_params)))
  return nearest.flop_rate()


def _expected_total(c: UnitClock) -> float:
  """Seconds the probe expects this launch's share of unit `c` to take."""
  left = c.flops_of(max(c.tokens - c.tokens_at_launch, 0.0))
  return c.expected_fixed + left / c.expected_rate


def slowdown(clocks: list[UnitClock]) -> float:
  """Measured time over the probe's expectation (> 1: slower than probed).

  From the units finished this launch when there are any (whole wall times, so
  start-up, evaluations and a machine busier than at the probe all count), else
  from the running units' measured FLOP rate against the expected one, else 1.
  """
  done = [c for c in clocks if c.expected_rate and c.started is not None
          and c.ended is not None]
  if done:
    return (sum(c.ended - c.started for c in done) /
            max(sum(_expected_total(c) for c in done), 1e-9))
  rates = [c.expected_rate / c.flop_rate() for c in clocks
           if c.expected_rate and c.ended is None and c.flop_rate()]
  return statistics.median(rates) if rates else 1.0


def _calibrated_seconds_left(left: list[UnitClock], clocks, now, parallel) -> float:
  k = slowdown(clocks)
  running, waiting = [], []
  for c in left:
    if c.started is None:
      waiting.append(k * _expected_total(c))
      continue
    # What the expectation leaves after the time already spent, but never less than
    # the steps left at the rate the unit is measured to train.
    rest = k * _expected_total(c) - (now - c.started)
    rate = c.flop_rate()
    if rate:
      rest = max(rest, c.flops_of(c.tokens - c.tokens_done) / rate)
    running.append(max(rest, 0.0))
  return _on_slots(running, waiting, parallel)


def seconds_left(clocks: list[UnitClock], now: float, parallel: int) -> float | None:
  """Wall seconds until every unit has finished; None while nothing is measured.

  With the start-up probe's expectations for every unit left, they are scaled by
  the measured `slowdown` (so an ETA exists from the start, and large units left
  keep the probe's size-dependent rates). Without them, the measured fixed cost
  and nearest-size rates below are all there is.
  """
  left = [c for c in clocks if c.ended is None and c.tokens_done < c.tokens]
  if left and all(c.expected_rate and c.expected_fixed is not None for c in left):
    return _calibrated_seconds_left(left, clocks, now, parallel)
  measured = [c for c in clocks if c.flop_rate() is not None]
  cost = fixed_cost(clocks)
  if not left:
    return 0.0
  if not measured or cost is None:
    return None
  running, waiting = [], []
  for c in left:
    rate = c.flop_rate() or _nearest_rate(c, measured)
    train = c.flops_of(c.tokens - c.tokens_done) / rate
    if c.started is None:
      waiting.append(cost + train)
    else:
      # Start-up not over yet: the rest of the fixed cost is still to come.
      still_fixed = cost - (now - c.started) if c.first_step_at is None else 0.0
      running.append(max(still_fixed, 0.0) + train)
  return _on_slots(running, waiting, parallel)


def _on_slots(running: list[float], waiting: list[float], parallel: int) -> float:
  """Wall seconds until the last unit ends: `running` ones end after their seconds,
  `waiting` ones start in launch order, each on the first of `parallel` slots to free."""
  slots = sorted(running) + [0.0] * max(parallel - len(running), 0)
  heapq.heapify(slots)
  for seconds in waiting:
    heapq.heappush(slots, heapq.heappop(slots) + seconds)
  return max(slots)


def expected_seconds(clocks: list[UnitClock], parallel: int) -> float:
  """Wall seconds the units not ended are expected to take, from their probe
  expectations (expected_fixed, expected_rate), all started in launch order."""
  waiting = [c.expected_fixed + c.flops_of(max(c.tokens - c.tokens_done, 0.0))
             / c.expected_rate for c in clocks if c.ended is None]
  return _on_slots([], waiting, parallel) if waiting else 0.0
