"""Reads the compile dry run's runs/*/compile.json and prints the per-preset table of
experiments/paper_grid/README.md (one row per model size: units of a size share one
compiled shape, so their memory, FLOPs and step time are equal; chip-hours are summed).

  python experiments/paper_grid/summarize.py /tmp/paper_pods
"""
import collections
import json
import pathlib
import re
import sys

from scaling_jax.aot import dry_run
from scaling_jax.aot.dry_run import GIB


def _preset(record: dict) -> str:
  # Unit names read <dataset>_<preset>_M<multiplier>_s<seed>.
  return record["unit"].split("_")[1]


def _size(preset: str) -> float:
  # openlm-154m -> 154e6, openlm-7b -> 7e9: sizes in the order the paper lists them.
  digits, unit = re.fullmatch(r"openlm-(\d+)([mb])", preset).groups()
  return float(digits) * (1e6 if unit == "m" else 1e9)


def main(workdir: str) -> None:
  files = sorted(pathlib.Path(workdir, "runs").glob("*/compile.json"))
  if not files:
    sys.exit(f"no runs/*/compile.json under {workdir}: run the compile dry run first "
             f"(python -m scaling_jax.main --config=configs/paper_pods.py --workdir={workdir})")
  by_preset = collections.defaultdict(list)
  for f in files:
    record = json.loads(f.read_text())
    by_preset[_preset(record)].append(record)
  print("| preset | units | slice | configured mesh | GiB/chip | fits | chosen mesh | GiB/chip "
        "| HLO / (6N'+12LTD) | HLO / executed | bound | roofline step (s) | MFU | chip-hours |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  total_hours, total_units = 0.0, 0
  for preset in sorted(by_preset, key=_size):
    records = by_preset[preset]
    first = records[0]
    conf, chosen, est = first["configured"], first.get("chosen"), first.get("roofline")
    over = ">" if "out_of_memory" in conf["memory"] else ""
    hours = sum(r.get("chip_hours", 0.0) for r in records)
    total_hours += hours
    total_units += len(records)
    cells = [preset, str(len(records)), first["topology"], dry_run.mesh_text(conf["mesh"]),
             f"{over}{conf['memory']['total'] / GIB:.1f}",
             "yes" if first["fits"] else "no"]
    if chosen and est:
      cells += [dry_run.mesh_text(chosen["mesh"]), f"{chosen['memory']['total'] / GIB:.1f}",
                f"{est['hlo_over_model']:.3f}", f"{est['hlo_over_executed']:.3f}",
                est["bound"], f"{est['step_seconds']:.3g}", f"{100 * est['mfu']:.0f}%",
                f"{hours:,.0f}"]
    else:
      cells += ["none fits"] + ["-"] * 7
    print("| " + " | ".join(cells) + " |")
  print(f"\n{total_units} units, {total_hours:,.0f} chip-hours at the roofline step times.")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/paper_pods")
