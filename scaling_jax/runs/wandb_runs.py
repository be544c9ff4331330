"""Runs from a Weights & Biases project, read through the csv source's column mapping.

A W&B project is a training log like any other: each run's config and history
become records, and `config.runs.csv` (runs/csv_mapping.py) says which columns are
N, tokens and the loss, so a project logged by any trainer fits like a CSV log.

  runs = wandb_runs.load("entity/project", config.runs)   # live, via wandb.Api
  runs = wandb_runs.load("ladder.json", config.runs)      # a saved export

  python -m scaling_jax.runs.wandb_runs export ENTITY/PROJECT out.json \
      [--filters='{"state": "finished"}'] [--keys=tokens,eval/loss]

The live path and a saved file share one shape, the export payload, so a test of
a recorded payload tests the live path's parser too:
  {"format": FORMAT, "path": "entity/project",
   "runs": [{"id", "name", "group", "state", "config": {...}, "summary": {...},
             "history": [{"_step": 100, "tokens": 409600, "eval/loss": 4.1}, ...]}]}
`export(api_runs)` builds it from wandb.Api's Run objects; `fetch` is the only
function that calls W&B itself.

Each history row of each run becomes one record, with columns:
  run, run_id, run_group, run_state  the run's name (the run column), id, group, state
  config keys, dotted                'model.n_params' for config {"model": {"n_params": 1}}
  summary.<key>                      the run's summary (its final values)
  history keys                       '_step', 'tokens', 'eval/loss', ...
A history key wins over a config key of the same name (the value at the row's step
over the run's setting); the run columns win over both. Keys starting with '_'
in the config and summary are W&B's own and are left out.

W&B history is sparse (a row holds what was logged at its step): rows with no
value in the mapped loss column (runs.csv.columns.loss), such as training steps
between evaluations, are left out and counted in a note. A record's place, in
messages and in the table's `source` column, is 'PATH:RUN_ID@_step=STEP'.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import Iterable, Mapping

from scaling_jax.runs import common
from scaling_jax.runs import csv_logs

RunsError = common.RunsError
FORMAT = "scaling_jax.wandb_runs/1"
RUN_COLUMNS = ("run", "run_id", "run_group", "run_state")
_INSTALL = "pip install -e '.[wandb]'"


def default_wandb_config():
  """`config.runs.wandb`: what to download from a live project (not a saved file)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(dict(
      # A W&B runs query as JSON (MongoDB-style), e.g. '{"state": "finished"}' or
      # '{"group": "ladder"}'; '' -> every run of the project.
      filters="",
      # History keys to download, comma-separated ('' -> all): W&B then returns only
      # the rows holding every one of them, e.g. 'tokens,eval/loss'.
      history_keys="",
  ))


def _plain(value):
  """`value` with W&B's mapping types (summary sub-dicts) as plain dicts and lists."""
  if isinstance(value, Mapping) or hasattr(value, "items"):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def export(api_runs: Iterable, path: str = "", keys: list[str] | None = None) -> dict:
  """The payload of `api_runs` (wandb.Api().runs(...), or objects with its Run's
  id, name, group, state, config, summary and scan_history(keys=...)).

  With `keys`, W&B returns only rows holding all of them, with no other key, so
  '_step' (which every row holds) is asked for too.
  """
  keys = list(dict.fromkeys(["_step", *keys])) if keys else None
  runs = []
  for run in api_runs:
    history = run.scan_history(keys=keys) if keys else run.scan_history()
    runs.append(dict(
        id=run.id, name=run.name, group=getattr(run, "group", None),
        state=getattr(run, "state", None), config=_plain(run.config),
        summary=_plain(run.summary), history=[_plain(row) for row in history]))
  return dict(format=FORMAT, path=path, runs=runs)


def fetch(path: str, filters: dict | None = None, keys: list[str] | None = None) -> dict:
  """The payload of the runs of the W&B project `path` ('entity/project')."""
  try:
    import wandb  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RunsError(f"runs.source 'wandb' reads project {path!r} with the wandb "
                    f"package, which is not installed: {_INSTALL} (or pass an exported "
                    f".json file as runs.path)") from None
  try:
    return export(wandb.Api().runs(path, filters=filters or None), path, keys)
  except (wandb.errors.Error, ValueError) as e:
    raise RunsError(f"cannot read the W&B project {path!r} (config field 'runs.path'): "
                    f"{type(e).__name__}: {e}; check the entity/project name and log in "
                    f"(`wandb login` or WANDB_API_KEY)") from None


def _flat(tree: Mapping, prefix: str = "") -> dict:
  """Nested config as dotted keys; W&B's own '_' keys left out."""
  out = {}
  for key, value in tree.items():
    if not prefix and str(key).startswith("_"):
      continue
    name = f"{prefix}{key}"
    if isinstance(value, Mapping) and value:
      out.update(_flat(value, name + "."))
    else:
      out[name] = value
  return out


def _check_payload(payload, where: str) -> list[dict]:
  if not isinstance(payload, dict) or payload.get("format") != FORMAT:
    raise RunsError(f"{where}: not a W&B export of runs/wandb_runs.py (expected a JSON "
                    f"object with format {FORMAT!r}); write one with `python -m "
                    f"scaling_jax.runs.wandb_runs export ENTITY/PROJECT {where}`")
  runs = payload.get("runs")
  if not isinstance(runs, list) or not runs:
    raise RunsError(f"{where}: the export holds no runs (a filter that matched none?)")
  for i, run in enumerate(runs):
    if not isinstance(run, dict) or not run.get("id") or not isinstance(
        run.get("history"), list):
      raise RunsError(f"{where}: run #{i} lacks an id or a history list")
  return runs


def records(payload: dict, where: str, loss_column: str
            ) -> tuple[list[str], list, list[str]]:
  """The payload's (header, records, notes); a history row without `loss_column`
  is left out (see the module docstring)."""
  header, out, skipped = {}, [], {}
  for run in _check_payload(payload, where):
    summary = {f"summary.{k}": v for k, v in _flat(run.get("summary") or {}).items()}
    config = _flat(run.get("config") or {})
    fixed = {**summary, **config}
    own = dict(zip(RUN_COLUMNS, (run.get("name") or run["id"], run["id"],
                                 run.get("group"), run.get("state"))))
    for i, row in enumerate(run["history"]):
      cells = {**fixed, **row, **own}
      header.update(dict.fromkeys([*own, *config, *row, *summary]))
      if cells.get(loss_column) in (None, ""):
        skipped[own["run"]] = skipped.get(own["run"], 0) + 1
        continue
      step = row.get("_step")
      place = f"{where}:{run['id']}@" + (f"_step={step}" if step is not None else f"#{i}")
      out.append(csv_logs.record(len(out) + 1, cells, place))
  notes = []
  if skipped:
    runs = ", ".join(f"{name} ({count})" for name, count in list(skipped.items())[:5])
    notes.append(f"{where}: {sum(skipped.values())} history row(s) without "
                 f"{loss_column!r} (steps with no evaluation) left out, of runs {runs}"
                 + (", ..." if len(skipped) > 5 else ""))
  return list(header), out, notes


def _read(path: str, runs_cfg) -> dict:
  """The payload at `path`: a saved .json export, else the live project."""
  if path.lower().endswith(".json"):
    try:
      with open(path, encoding="utf-8") as f:
        return json.load(f)
    except FileNotFoundError:
      raise RunsError(f"{path}: no such file (config field 'runs.path'; a W&B export, "
                      f"or ENTITY/PROJECT to read the project itself)") from None
    except json.JSONDecodeError as e:
      raise RunsError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
  if path.count("/") > 1 or os.path.exists(path):
    raise RunsError(f"config field 'runs.path' is {path!r}: for runs.source 'wandb' "
                    f"give ENTITY/PROJECT, or an export saved as a .json file")
  wandb_cfg = runs_cfg.get("wandb") or default_wandb_config()
  return fetch(path, _filters(wandb_cfg.filters), _keys(wandb_cfg.history_keys))


def _filters(text: str) -> dict | None:
  if not str(text).strip():
    return None
  try:
    filters = json.loads(text)
  except json.JSONDecodeError as e:
    raise RunsError(f"config field 'runs.wandb.filters' is {text!r}, not JSON ({e.msg}); "
                    f"write a W&B runs query like '{{\"state\": \"finished\"}}'") from None
  if not isinstance(filters, dict):
    raise RunsError(f"config field 'runs.wandb.filters' must be a JSON object, like "
                    f"'{{\"state\": \"finished\"}}'; got {text!r}")
  return filters


def _keys(text) -> list[str] | None:
  keys = [k.strip() for k in str(text or "").split(",") if k.strip()]
  return keys or None


def load(path: str, runs_cfg) -> common.Runs:
  """The runs of the W&B project or export `path`, through `runs_cfg.csv`."""
  path = os.fspath(path)
  csv_cfg = runs_cfg.get("csv") or csv_logs.default_csv_config()
  columns = csv_cfg.get("columns") or {}
  loss_column = str(columns.get("loss", "loss")).strip()
  header, recs, notes = records(_read(path, runs_cfg), path, loss_column)
  if not recs:
    close = difflib.get_close_matches(loss_column, header, n=3, cutoff=0.5)
    raise RunsError(f"{path}: no history row holds the loss column {loss_column!r}"
                    + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
                    + f"; map the one the runs log with --config.runs.csv.columns.loss"
                    f"=KEY; the runs' columns: {', '.join(map(repr, header[:40]))}")
  runs = csv_logs.from_records(header, recs, csv_cfg, path)
  runs.notes[:0] = notes
  return runs


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m scaling_jax.runs.wandb_runs",
      description="Save a W&B project's runs (config, summary, history) as JSON, "
                  "for --config.runs.source=wandb --config.runs.path=FILE.json")
  sub = parser.add_subparsers(dest="command", required=True)
  cmd = sub.add_parser("export", help="save ENTITY/PROJECT to a .json file")
  cmd.add_argument("project", help="ENTITY/PROJECT")
  cmd.add_argument("out", help="the .json file to write")
  cmd.add_argument("--filters", default="", help="a W&B runs query as JSON")
  cmd.add_argument("--keys", default="", help="history keys, comma-separated")
  args = parser.parse_args(argv)
  try:
    payload = fetch(args.project, _filters(args.filters), _keys(args.keys))
  except RunsError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  tmp = f"{args.out}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(payload, f, indent=1, default=str)
  os.replace(tmp, args.out)
  print(f"wrote {len(payload['runs'])} runs to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
