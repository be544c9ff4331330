"""AdamW, its warmup + cosine schedule and its decay mask, against a numpy reference."""
import math

import jax
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from scaling_jax import model as model_lib
from scaling_jax import optim

PEAK, FINAL, WARMUP, TOTAL = 3e-3, 3e-5, 8, 40


def _config(**overrides):
  fields = dict(peak_lr=PEAK, final_lr=FINAL, beta1=0.9, beta2=0.95, eps=1e-8,
                weight_decay=0.1, grad_clip=1.0)
  fields.update(overrides)
  return ml_collections.ConfigDict(fields)


def _lr(step, peak=PEAK, final=FINAL, warmup=WARMUP, total=TOTAL):
  return float(optim.schedule(peak, final, warmup, total)(step))


def test_warmup_rises_linearly_from_zero_to_peak_at_exactly_warmup_steps():
  assert _lr(0) == 0.0
  for step in range(1, WARMUP + 1):
    assert _lr(step) == pytest.approx(PEAK * step / WARMUP, rel=1e-6), step
  assert _lr(WARMUP) == pytest.approx(PEAK, rel=1e-6)


def test_cosine_decays_to_final_lr_not_zero_and_stays_there():
  decay = TOTAL - WARMUP
  values = [_lr(s) for s in range(WARMUP, TOTAL + 1)]
  assert all(a >= b for a, b in zip(values, values[1:]))  # never rises after warmup
  assert _lr(TOTAL) == pytest.approx(FINAL, rel=1e-5)
  assert _lr(TOTAL + 1000) == pytest.approx(FINAL, rel=1e-5)
  # Halfway through the decay a cosine sits at the mean of its ends; at a quarter,
  # it sits above the straight line between them (a linear decay would not).
  assert _lr(WARMUP + decay // 2) == pytest.approx((PEAK + FINAL) / 2, rel=1e-5)
  quarter = FINAL + (PEAK - FINAL) * (1 + math.cos(math.pi / 4)) / 2
  assert _lr(WARMUP + decay // 4) == pytest.approx(quarter, rel=1e-5)


@pytest.mark.parametrize("final", [PEAK * 1.01, -1e-6])
def test_final_lr_outside_zero_to_peak_is_rejected_by_name(final):
  with pytest.raises(ValueError, match="optim.final_lr"):
    optim.schedule(PEAK, final, WARMUP, TOTAL)


def test_zero_peak_lr_is_zero_everywhere_not_nan():
  # final_lr / peak_lr would be 0 / 0 if the zero-LR case were not special-cased.
  values = [_lr(s, peak=0.0, final=0.0) for s in (0, WARMUP, TOTAL // 2, TOTAL)]
  assert values == [0.0] * 4


def _model_params():
  cfg = model_lib.preset("tiny-0", seq_len=16)
  _, state = nnx.split(model_lib.abstract_model(cfg), nnx.Param)
  shapes = nnx.to_pure_dict(state)
  return jax.tree.map(lambda s: np.ones(s.shape, np.float32), shapes)


@pytest.mark.slow
def test_weight_decay_shrinks_matrices_but_not_the_real_models_norm_gains():
  params = _model_params()
  # The per-layer gains are stacked [layers, width]: a mask keyed on ndim would decay
  # them. Only their names mark them as gains.
  assert params["attn_norm"].ndim == 2
  config = _config(weight_decay=0.1)
  tx = optim.make_optimizer(config)
  lrs = optim.learning_rates(config, warmup_steps=1, total_steps=10)
  state = tx.init(params)
  zeros = jax.tree.map(np.zeros_like, params)
  _, state = tx.update(zeros, optim.with_learning_rate(state, lrs[0]), params)  # lr 0
  updates, _ = tx.update(zeros, optim.with_learning_rate(state, lrs[1]), params)  # peak
  undecayed = {name for name, u in updates.items() if np.all(np.asarray(u) == 0)}
  assert undecayed == {"attn_norm", "mlp_norm", "final_norm"}
  for name, u in updates.items():
    if name not in undecayed:
      # Zero gradients leave only the decoupled decay: -lr * wd * param.
      np.testing.assert_allclose(np.asarray(u), -PEAK * 0.1, rtol=1e-5, err_msg=name)


def _reference_adamw(grads_seq, params, cfg, warmup, total, decayed):
  """Plain numpy AdamW (global-norm clip, bias correction, decoupled decay)."""
  p = {k: v.astype(np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  decay_steps = total - warmup
  for t, grads in enumerate(grads_seq):
    if t < warmup:
      lr = cfg.peak_lr * t / warmup
    else:
      frac = min(t - warmup, decay_steps) / decay_steps
      lr = cfg.final_lr + (cfg.peak_lr - cfg.final_lr) * 0.5 * (1 + math.cos(math.pi * frac))
    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    scale = min(1.0, cfg.grad_clip / norm) if cfg.grad_clip > 0 else 1.0
    for k in p:
      g = grads[k].astype(np.float64) * scale
      m[k] = cfg.beta1 * m[k] + (1 - cfg.beta1) * g
      v[k] = cfg.beta2 * v[k] + (1 - cfg.beta2) * g * g
      m_hat = m[k] / (1 - cfg.beta1 ** (t + 1))
      v_hat = v[k] / (1 - cfg.beta2 ** (t + 1))
      step = m_hat / (np.sqrt(v_hat) + cfg.eps)
      if k in decayed:
        step = step + cfg.weight_decay * p[k]
      p[k] = p[k] - lr * step
  return p


@pytest.mark.parametrize("grad_clip", [0.5, 0.0])
def test_matches_a_numpy_adamw_with_global_norm_clipping(grad_clip):
  rng = np.random.default_rng(0)
  params = {"w": rng.normal(size=(3, 4)).astype(np.float32),
            "final_norm": rng.normal(size=(4,)).astype(np.float32)}
  # Gradient scales straddle the 0.5 threshold: some steps are clipped, some not.
  grads_seq = [{k: (rng.normal(size=v.shape) * s).astype(np.float32)
                for k, v in params.items()}
               for s in rng.choice([0.05, 0.2, 3.0], size=12)]
  cfg = _config(peak_lr=1e-2, final_lr=1e-3, beta1=0.8, beta2=0.9, eps=1e-3,
                weight_decay=0.5, grad_clip=grad_clip)
  tx = optim.make_optimizer(cfg)
  lr_at = optim.schedule(cfg.peak_lr, cfg.final_lr, warmup_steps=3, total_steps=10)
  state, p = tx.init(params), params
  for step, grads in enumerate(grads_seq):  # 12 steps: past its end, final_lr
    updates, state = tx.update(grads, optim.with_learning_rate(state, lr_at(step)), p)
    p = optax.apply_updates(p, updates)
  want = _reference_adamw(grads_seq, params, cfg, 3, 10, decayed={"w"})
  for k in params:
    np.testing.assert_allclose(np.asarray(p[k]), want[k], rtol=2e-5, atol=1e-6,
                               err_msg=k)
