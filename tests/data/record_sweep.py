r"""Turns a finished sweep into the ETA test's fixture: what the launcher saw, when.

    python -m scaling_jax.main --config=configs/grid.py --workdir=W 2> W.log
    python tests/data/record_sweep.py W W.log > tests/data/recorded_sweep.json

Per unit: N, FLOPs, the wall times the launcher started and ended it (from the
sweep's `started` / `finished` progress lines, which carry the time of day), its
step log (wall time, tokens, tokens/s) and the start-up probe's expectations
(WORKDIR/probe.json), so a test can replay, at any moment, exactly what a launcher
knew then.
"""
import datetime
import json
import os
import re
import sys

_LINE = re.compile(r"\[sweep (\d\d:\d\d:\d\d)\] (started|finished) (\S+)")


def _unix(day: datetime.date, clock: str, tz) -> float:
  hms = datetime.time.fromisoformat(clock)
  return datetime.datetime.combine(day, hms, tzinfo=tz).timestamp()


def record(workdir: str, sweep_log: str) -> dict:
  runs = os.path.join(workdir, "runs")
  units = {}
  for name in sorted(os.listdir(runs)):
    with open(os.path.join(runs, name, "train_metrics.jsonl"), encoding="utf-8") as f:
      rows = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(runs, name, "records.jsonl"), encoding="utf-8") as f:
      final = [r for r in map(json.loads, f) if r.get("final")][-1]
    units[name] = dict(N=final["N"], flops=final["flops"],
                       rows=[[r["wall_time"], r["tokens"], r["tokens_per_s"]]
                             for r in rows])
  probe = os.path.join(workdir, "probe.json")  # the start-up probe's expectations
  if os.path.exists(probe):
    with open(probe, encoding="utf-8") as f:
      for name, expected in json.load(f)["units"].items():
        units[name].update(expected)
  first_wall = min(r[0] for u in units.values() for r in u["rows"])
  local = datetime.datetime.fromtimestamp(first_wall).astimezone()
  with open(sweep_log, encoding="utf-8") as f:
    for clock, event, name in _LINE.findall(f.read()):
      key = "started" if event == "started" else "ended"
      units[name][key] = _unix(local.date(), clock, local.tzinfo)
  return dict(units=units)


if __name__ == "__main__":
  json.dump(record(sys.argv[1], sys.argv[2]), sys.stdout, indent=0)
