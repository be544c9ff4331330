"""Validation loss: exact per-token mean and interval, and the interval's coverage."""
import pathlib

import numpy as np
import pytest

from scaling_jax.evals import base
from scaling_jax.evals import val_loss

VOCAB = 5


class _Tokens:
  def __init__(self, stream):
    self.stream = np.asarray(stream, np.int32)
    self.num_tokens = len(self.stream)

  def windows(self, starts, length):
    return np.stack([self.stream[s:s + length] for s in starts])


class _Dataset:
  """The slice of a prepared dataset that evaluators read."""

  def __init__(self, **streams):
    self.split_names = tuple(streams)
    self.path = pathlib.Path("fake_dataset")
    self._tokens = {k: _Tokens(v) for k, v in streams.items()}

  def tokens(self, split):
    return self._tokens[split]


class _BigramModel:
  """logits[b, t] = log_probs[tokens[b, t]]; checks the batch like the real logits_fn."""

  def __init__(self, log_probs, seq_len, batch_multiple=1):
    self.log_probs = np.asarray(log_probs, np.float32)
    self.seq_len, self.batch_multiple = seq_len, batch_multiple
    self.batch_shapes = []

  def __call__(self, tokens):
    tokens = np.asarray(tokens)
    assert tokens.shape[0] % self.batch_multiple == 0, tokens.shape
    assert tokens.shape[1] <= self.seq_len, tokens.shape
    self.batch_shapes.append(tokens.shape)
    return self.log_probs[tokens]


def _log_softmax(a):
  a = np.asarray(a, np.float64)
  return a - np.log(np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True)) - a.max(
      -1, keepdims=True)


def _expected(stream, log_probs, num_targets):
  """Mean and 1.96 std / sqrt(n) over the first n next-token losses of the stream."""
  lp = _log_softmax(log_probs)
  nll = -lp[stream[:num_targets], stream[1:num_targets + 1]]
  return nll.mean(), 1.96 * nll.std() / np.sqrt(num_targets)


def test_mean_and_half_width_over_exactly_the_whole_batches_of_target_tokens():
  rng = np.random.default_rng(0)
  stream = rng.integers(0, VOCAB, 1000)
  log_probs = rng.normal(size=(VOCAB, VOCAB)) * 2
  model = _BigramModel(log_probs, seq_len=8, batch_multiple=2)
  # batch_size 3 rounds up to 4 rows; max_tokens 120 -> 15 windows of 8 targets ->
  # 3 whole batches of 4 -> 96 target tokens, the trailing 3 windows dropped.
  evaluator = val_loss.ValLossEvaluator(_Dataset(validation=stream), ("validation",),
                                        max_tokens=120, batch_size=3)
  got = dict(evaluator.evaluate(model))
  assert model.batch_shapes == [(4, 8)] * 3
  mean, half_width = _expected(stream, log_probs, 96)
  assert got["loss/validation"] == pytest.approx(mean, rel=1e-5)
  assert got["loss_ci/validation"] == pytest.approx(half_width, rel=1e-4)


def test_each_split_is_scored_on_its_own_tokens_under_its_own_names():
  rng = np.random.default_rng(1)
  streams = dict(validation=rng.integers(0, VOCAB, 300),
                 ood=np.arange(300) % VOCAB)  # perfectly predictable: t -> t + 1
  log_probs = 10.0 * np.eye(VOCAB)[(np.arange(VOCAB) + 1) % VOCAB]
  evaluator = val_loss.ValLossEvaluator(_Dataset(**streams), ("validation", "ood"),
                                        max_tokens=64, batch_size=2)
  got = list(evaluator.evaluate(_BigramModel(log_probs, seq_len=8)))
  assert [name for name, _ in got] == ["loss/validation", "loss_ci/validation",
                                       "loss/ood", "loss_ci/ood"]
  got = dict(got)
  for split, stream in streams.items():
    mean, half_width = _expected(stream, log_probs, 64)
    # float32 logits: the near-zero loss of 'ood' is resolved to ~1e-6 absolute.
    assert got[f"loss/{split}"] == pytest.approx(mean, rel=1e-5, abs=1e-6)
    assert got[f"loss_ci/{split}"] == pytest.approx(half_width, rel=1e-4, abs=1e-6)
  assert got["loss/ood"] < 1e-3 < got["loss/validation"]


def test_interval_covers_the_true_loss_95_percent_of_the_time_for_iid_tokens():
  # Tokens drawn i.i.d. from p, scored by a model predicting q: the true expected
  # loss is the cross-entropy -sum p log q, and the token-level interval is exact
  # (up to the CLT) for independent tokens.
  p = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
  q = np.array([0.3, 0.3, 0.2, 0.1, 0.1])
  truth = -np.sum(p * np.log(q))
  model = _BigramModel(np.tile(np.log(q), (VOCAB, 1)), seq_len=16)
  rng = np.random.default_rng(2)
  trials, covered, widths = 400, 0, []
  for _ in range(trials):
    ds = _Dataset(validation=rng.choice(VOCAB, size=257, p=p))
    got = dict(val_loss.ValLossEvaluator(ds, ("validation",), max_tokens=256,
                                         batch_size=4).evaluate(model))
    mean, half_width = got["loss/validation"], got["loss_ci/validation"]
    covered += abs(mean - truth) <= half_width
    widths.append(half_width)
  # Binomial standard error of the coverage: sqrt(.95 * .05 / 400) = 0.011; 3 of them.
  assert 0.95 - 0.033 <= covered / trials <= 0.95 + 0.033
  sd = np.sqrt(np.sum(p * np.log(q) ** 2) - truth ** 2)
  assert np.mean(widths) == pytest.approx(1.96 * sd / 16, rel=0.05)


def test_config_defaults_to_every_split_but_train_and_names_unknown_splits():
  ds = _Dataset(train=np.zeros(100), validation=np.zeros(100), ood=np.zeros(100))
  (evaluator,) = base.build_evaluators(
      [dict(kind="val_loss", max_tokens=512, batch_size=4)], ds)
  assert evaluator.splits == ("validation", "ood")
  assert (evaluator.max_tokens, evaluator.batch_size) == (512, 4)
  with pytest.raises(ValueError, match=r"\['test'\] are not in the dataset.*'ood'"):
    base.build_evaluators([dict(kind="val_loss", splits=("validation", "test"))], ds)
