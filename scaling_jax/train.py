"""Train one work unit: init or resume, the jitted step, in-loop evals, records.

`train_run(config, workdir)` writes under `workdir`:
  checkpoints/   orbax checkpoints of {params, opt_state, step}
  records.jsonl  runs-table rows, one per evaluation (see scaling_jax.records)
  tb/            TensorBoard event files (train loss, LR, throughput, eval metrics,
                 and an HParams session when the unit finishes; see event_log),
                 mirrored to Weights & Biases when config.wandb.project is set
                 (see wandb_log)
  train_metrics.jsonl  one row per logged step (see scaling_jax.train_metrics)
"""
from __future__ import annotations

import functools
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import nnx

from scaling_jax import checkpoint
from scaling_jax import compile_cache
from scaling_jax import plan as plan_lib
from scaling_jax import data
from scaling_jax import event_log
from scaling_jax import ladder
from scaling_jax import model as model_lib
from scaling_jax import optim
from scaling_jax import preemption
from scaling_jax.runs import table as runs_table
from scaling_jax import sharding
from scaling_jax import train_metrics as train_metrics_lib
from scaling_jax import wandb_log
from scaling_jax.data import grain_reader
from scaling_jax.evals import base as evals_base


def train_step(state: dict, batch_BT1: jax.Array, lr: jax.Array, *, graphdef, tx):
  """One optimiser step at learning rate `lr` on a [B, T+1] token batch; returns
  (state, metrics)."""

  def loss(params):
    model = nnx.merge(graphdef, nnx.State(params))
    return model_lib.loss_fn(model, batch_BT1)

  (total, aux), grads = jax.value_and_grad(loss, has_aux=True)(state["params"])
  opt_state = optim.with_learning_rate(state["opt_state"], lr)
  updates, opt_state = tx.update(grads, opt_state, state["params"])
  params = optax.apply_updates(state["params"], updates)
  # The LR this update used, from the optimiser state (the loop logs it).
  metrics = dict(aux, total_loss=total, grad_norm=optax.tree.norm(grads),
                 lr=optim.learning_rate(opt_state))
  return dict(params=params, opt_state=opt_state, step=state["step"] + 1), metrics


class Program:
  """The jitted functions of one (model, optimiser, mesh), compiled once each."""

  def __init__(self, cfg: model_lib.ModelConfig, tx, mesh):
    self.cfg, self.tx, self.mesh = cfg, tx, mesh
    self.graphdef, abstract = nnx.split(model_lib.abstract_model(cfg), nnx.Param)
    abstract_params = nnx.to_pure_dict(abstract)
    param_sh = sharding.param_shardings(abstract, mesh)
    repl = sharding.replicated(mesh)
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, param_sh,
                                   transform_non_params=lambda _: repl)
    self.state_sharding = dict(params=param_sh, opt_state=opt_sh, step=repl)
    self.param_sharding = param_sh
    step_fn = functools.partial(train_step, graphdef=self.graphdef, tx=tx)
    self._step = jax.jit(step_fn, in_shardings=(self.state_sharding,
                                                sharding.batch_sharding(mesh), repl),
                         out_shardings=(self.state_sharding, repl),
                         donate_argnums=0)
    self._init = jax.jit(self._init_state, static_argnums=0,
                         out_shardings=self.state_sharding)
    self._logits = jax.jit(self._apply, in_shardings=(
        param_sh, sharding.batch_sharding(mesh)))

  def _init_state(self, seed: int):
    model = model_lib.Transformer(self.cfg, rngs=nnx.Rngs(seed))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    return dict(params=params, opt_state=self.tx.init(params),
                step=jnp.zeros((), jnp.int32))

  def _apply(self, params, tokens_BT):
    return nnx.merge(self.graphdef, nnx.State(params))(tokens_BT)

  def abstract_state(self):
    shapes = jax.eval_shape(functools.partial(self._init_state, 0))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        shapes, self.state_sharding)

  def init(self, seed: int):
    with jax.set_mesh(self.mesh):
      return self._init(seed)

  def step(self, state, local_batch: np.ndarray, lr: float):
    """One step at learning rate `lr` (see optim.learning_rates)."""
    with jax.set_mesh(self.mesh):
      return self._step(state, sharding.global_batch(local_batch, self.mesh),
                        np.float32(lr))

  def step_hlo(self, state, local_batch: np.ndarray) -> str:
    """The compiled step's optimized HLO, whose instruction names are what a
    jax.profiler trace of the step reports (benchmarks/step_profile.py)."""
    with jax.set_mesh(self.mesh):
      lowered = self._step.lower(state, sharding.global_batch(local_batch, self.mesh),
                                 np.float32(0.0))
    return lowered.compile().as_text()

  def lower_step(self, global_batch: int):
    """The train step lowered for abstract inputs, for ahead-of-time compilation
    on devices that need not exist here (scaling_jax/aot); nothing is allocated."""
    batch = jax.ShapeDtypeStruct((global_batch, self.cfg.seq_len + 1), jnp.int32,
                                 sharding=sharding.batch_sharding(self.mesh))
    with jax.set_mesh(self.mesh):
      return self._step.lower(self.abstract_state(), batch,
                              jax.ShapeDtypeStruct((), jnp.float32))

  def lower_logits(self, batch: int, seq_len: int):
    """The evaluators' forward pass lowered for [batch, seq_len] tokens."""
    tokens = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32,
                                  sharding=sharding.batch_sharding(self.mesh))
    with jax.set_mesh(self.mesh):
      return self._logits.lower(self.abstract_state()["params"], tokens)

  def logits_fn(self, params):
    """logits_fn for evaluators, closed over `params` (see evals/base.py)."""
    def logits_fn(tokens_BT):
      tokens_BT = np.asarray(tokens_BT, np.int32)
      if tokens_BT.shape[0] % logits_fn.batch_multiple:
        raise ValueError(f"logits_fn batch {tokens_BT.shape[0]} is not a multiple "
                         f"of batch_multiple {logits_fn.batch_multiple}")
      with jax.set_mesh(self.mesh):
        return self._logits(params, jax.device_put(
            tokens_BT, sharding.batch_sharding(self.mesh)))
    logits_fn.batch_multiple = sharding.batch_multiple(self.mesh)
    logits_fn.seq_len = self.cfg.seq_len
    return logits_fn


def _recorded_steps(path: str) -> set[int]:
  if not os.path.exists(path):
    return set()
  return {row["step"] for row in runs_table.read_rows(path)}


class _Reporter:
  """Console progress, TensorBoard events, train-metric and runs-table rows.

  Only process 0 writes. TensorBoard gets the train and eval scalars and, with the
  final evaluation, one HParams session (the unit's N, M, model, dataset, seed,
  peak LR, steps and batch; the final eval metrics), so a sweep can be sliced by
  N and M in the HParams tab.
  """

  def __init__(self, config, workdir, plan, cfg, dataset_name, start_step):
    self.plan, self.enabled = plan, jax.process_index() == 0
    self.records_path = os.path.join(workdir, runs_table.RECORDS_FILENAME)
    self.recorded = _recorded_steps(self.records_path)
    self.base = dict(run=config.get("name") or os.path.basename(
        os.path.normpath(workdir)), N=plan.num_params, M=plan.tokens_per_param,
                     model=cfg.name, dataset=dataset_name, seed=config.seed,
                     config=runs_table.config_json(config))
    if plan.in_ladder:
      self.base["branch_of"] = (ladder.trunk_name(config, workdir)
                                if plan.branch_from_step else "")
    self.hparams = {k: self.base[k] for k in ("N", "M", "model", "dataset", "seed")}
    self.hparams.update(peak_lr=config.optim.peak_lr, steps=plan.steps,
                        global_batch=config.train.global_batch)
    self.tb = self.train_log = None
    if self.enabled:
      self.tb = wandb_log.mirrored(event_log.EventLog(os.path.join(workdir, "tb")),
                                   config, workdir, self.base["run"], self.hparams,
                                   plan.tokens_at)
      self.train_log = train_metrics_lib.TrainMetricsLog(
          os.path.join(workdir, train_metrics_lib.FILENAME), start_step)
    self._last = (time.time(), None)

  def train_metrics(self, step: int, metrics) -> None:
    """Logs the step's `metrics` (train_step's, with the LR its update used)."""
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    now, (t_last, step_last) = time.time(), self._last
    self._last = (now, step)
    if not self.enabled:
      return
    # The first logged step of a process includes compilation: no throughput.
    tok_s = eta = None
    if step_last is not None:
      tok_s = (step - step_last) * self.plan.tokens_per_step / max(now - t_last, 1e-9)
      eta = (self.plan.steps - step) * self.plan.tokens_per_step / tok_s
    logging.info("step %d/%d loss %.4f lr %.2e%s", step, self.plan.steps,
                 metrics["loss"], metrics["lr"], "" if tok_s is None else
                 f" | {tok_s:.0f} tokens/s, ETA {eta:.0f}s")
    self.tb.scalars(step, {f"train/{k}": v for k, v in metrics.items()}
                    | {"train/tokens_per_s": tok_s})
    self.train_log.append(dict(step=step, tokens=self.plan.tokens_at(step),
                               wall_time=now, **metrics, tokens_per_s=tok_s))

  def _row(self, step: int, **fields) -> dict:
    """A runs-table row at `step`, appended to records.jsonl (process 0)."""
    tokens = self.plan.tokens_at(step)
    row = dict(self.base, step=step, tokens=tokens,
               flops=runs_table.training_flops(self.base["N"], tokens), **fields)
    if "branch_of" in self.base:  # what it cost: a branch trains from its fork only
      row["cost_flops"] = self.plan.cost_flops_at(step)
    if self.enabled:
      runs_table.append_rows(self.records_path, [row])
    return row

  def eval_row(self, step: int, values: dict) -> dict:
    row = self._row(step, final=step == self.plan.steps, **values)
    if self.enabled:
      written = self.tb.scalars(step, values)
      if row["final"]:
        self.tb.hparams(step, self.hparams, metric_tags=written)
      logging.info("eval step %d: %s", step, values)
    return row

  def diverged_row(self, step: int) -> dict:
    """The run's last row: diverged at `step`, with no metrics (see runs/table.py).

    Final, so the unit counts as finished and no launch retrains it; the fit
    leaves the run out and says so.
    """
    logging.warning("run %s diverged: non-finite loss at step %d; recorded as "
                    "diverged and stopped", self.base["run"], step)
    return self._row(step, final=True, diverged=True)

  def close(self):
    for log in (self.tb, self.train_log):
      if log:
        log.close()


def _open_data(config, cfg, plan):
  ds = data.prepare_dataset(config.data, None)
  if ds.tokenizer.vocab_size > cfg.vocab_size:
    raise ValueError(f"config.model.vocab_size ({cfg.vocab_size}) is smaller than "
                     f"the tokenizer's vocabulary ({ds.tokenizer.vocab_size}); set "
                     f"config.model.vocab_size >= {ds.tokenizer.vocab_size}")
  plan_lib.check_data_fits(plan, ds.num_tokens("train"))
  return ds


def _finite_loss(metrics) -> bool:
  return math.isfinite(float(metrics["loss"]))


def _finite_losses(values: dict | None) -> bool:
  """Whether evaluation `values` were measured (None: not worth it) and their
  losses are finite."""
  return values is not None and all(
      math.isfinite(v) for k, v in values.items() if k.startswith(runs_table.LOSS_PREFIX))


def _mesh_text(mesh) -> str:
  """'data=2 fsdp=1 tensor=1 (2 cpu devices)': what the unit trains on."""
  axes = " ".join(f"{name}={size}" for name, size in mesh.shape.items())
  return f"{axes} ({mesh.devices.size} {mesh.devices.flat[0].platform} devices)"


def _evaluate(program, evaluators, state) -> dict:
  values = {}
  logits_fn = program.logits_fn(state["params"])
  for evaluator in evaluators:
    values.update(dict(evaluator.evaluate(logits_fn)))
  return values


def train_run(config, workdir: str) -> list[dict]:
  """Trains (or resumes) one unit; returns the runs-table rows written this call."""
  wandb_log.check(config)  # before any data is read
  sharding.maybe_initialize_distributed(config)
  compile_cache.configure(config.train)  # before the first compile
  plan, cfg = plan_lib.plan(config), plan_lib.model_config(config)
  mesh = sharding.make_mesh(config.mesh)
  ds = _open_data(config, cfg, plan)
  reader = data.BatchReader(ds, split="train", seq_len=cfg.seq_len,
                            global_batch=config.train.global_batch, seed=config.seed,
                            allow_repeat=False, process_index=jax.process_index(),
                            process_count=jax.process_count())
  evaluators = evals_base.build_evaluators(config.get("evals"), ds)
  tx = optim.make_optimizer(config.optim)
  lrs = optim.learning_rates(config.optim, plan.warmup_steps, plan.steps)
  program = Program(cfg, tx, mesh)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 plan.checkpoint_every_steps,
                                 config.train.keep_checkpoints)
  state = ckpt.restore(program.abstract_state())
  if plan.branch_from_step and state is None:  # a ladder branch's first call
    state = ladder.trunk_state(
        ladder.branch_dir(config, workdir), plan.branch_from_step,
        program.abstract_state(),
        wait_seconds=60 * config.train.get("branch_wait_minutes", 24 * 60.0))
  state = program.init(config.seed) if state is None else state
  step = int(state["step"])  # where this call starts: 0, or the restored step
  reporter = _Reporter(config, workdir, plan, cfg, config.get("dataset") or
                       data.dataset_name(config.data), step)
  stop = plan.steps
  if config.train.stop_after_steps:
    stop = min(stop, config.train.stop_after_steps)
  rows = []
  # Prefetched (grain) or read when asked; either way batch k is reader.batch(k).
  batches = grain_reader.batch_iterator(
      reader, start_step=step, stop_step=stop,
      backend=data.resolve_config(config.data).reader)
  eval_at = set(plan_lib.eval_steps(plan))
  log_every = max(config.train.log_every_steps, 1)
  pending = previous = diverged_at = None
  logging.info("run %s: N=%d, %d steps of %d tokens on mesh %s, starting at step %d",
               reporter.base["run"], plan.num_params, plan.steps,
               plan.tokens_per_step, _mesh_text(mesh), step)
  interrupted = False
  with preemption.honoured():
    try:
      while step < stop:
        # Dispatch step n before reading step n-1's metrics, so the host never
        # stalls the device.
        state, metrics = program.step(state, next(batches), lrs[step])
        step += 1
        if previous is not None and not _finite_loss(previous[1]):
          diverged_at = previous[0]
          break
        previous = (step, metrics)
        if pending is not None:
          reporter.train_metrics(*pending)
          pending = None
        if step % log_every == 0 or step in eval_at or step == stop:
          pending = (step, metrics)
        if step in eval_at and step not in reporter.recorded:
          # An evaluation waits for this step anyway: check its loss now, and the
          # eval losses of parameters the step's update may have broken.
          values = (_evaluate(program, evaluators, state) if _finite_loss(metrics)
                    else None)
          if not _finite_losses(values):
            diverged_at = step
            break
          rows.append(reporter.eval_row(step, values))
        if ckpt.reached_preemption(step) or preemption.requested():
          if pending is not None:
            reporter.train_metrics(*pending)
          ckpt.save_now(step, state)
          raise preemption.Stopped(step)
        if step in plan.branch_points:  # every process: orbax saves collectively
          ladder.save_branch_point(ladder.branch_dir(config, workdir), step, state)
        ckpt.maybe_save(step, state, force=step == stop)
      if pending is not None:
        reporter.train_metrics(*pending)
      if diverged_at is not None:
        rows.append(reporter.diverged_row(diverged_at))
    except KeyboardInterrupt as e:
      # A stop that did not wait for its step (Ctrl-C, a second signal) may have
      # struck inside orbax's save, whose wait could then never return; that
      # save is lost either way, and the last committed one stands.
      interrupted = not isinstance(e, preemption.Stopped)
      raise
    finally:
      ckpt.close(wait=not interrupted)
      reporter.close()
  return rows
