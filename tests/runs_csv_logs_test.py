"""runs.csv_logs: training logs of any framework (CSV, JSONL) as runs-table rows."""
import csv
import json
import re

import pytest

from scaling_jax.fitting import points as points_lib
from scaling_jax.runs import common
from scaling_jax.runs import csv_logs
from scaling_jax.runs import table as runs_table

OLMO_TOKENS_PER_STEP = 2160 * 2048  # OLMo's batch: 2160 sequences of 2048 tokens
# Counted from the shapes in t5_pile.csv's own gin configs (T5 v1.1: gated GELU, untied
# logits, vocabulary 32128): d_model/d_ff/heads/layers 768/2048/12/12 for base up to
# 4096/10240/64/24 for xxl.
T5_SIZES = ("{'base': 247_577_856, 'large': 783_150_080, 'xl': 2_849_757_184, "
            "'xxl': '11.135332352B'}")
T5_TARGET_TOKENS = 2048 * 114  # t5_pile.csv's loss columns sum over a batch's targets

# Four runs in the default layout, interleaved as a shared log writes them.
DEFAULT_LAYOUT = """run,params,tokens,loss
a,1M,20M,3.5
a,1M,40M,3.1
b,2M,40M,3.2
b,2M,80M,2.9
a,1M,60M,3.0
c,350k,7000000,4.0
d,4e6,8e7,2.8
d,4e6,1.6e8,2.6
"""


def _config(**overrides):
  cfg = csv_logs.default_csv_config()
  for name, column in overrides.pop("columns", {}).items():
    cfg.columns[name] = column
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


def _load(tmp_path, text, name="log.csv", **overrides):
  path = tmp_path / name
  path.write_text(text, encoding="utf-8")
  return csv_logs.load(path, _config(**overrides))


def _by_run(rows):
  runs = {}
  for row in rows:
    runs.setdefault(row["run"], []).append(row)
  return runs


def test_default_layout_gives_checkpoints_with_final_m_and_flops(tmp_path):
  loaded = _load(tmp_path, DEFAULT_LAYOUT)
  assert isinstance(loaded, common.Runs) and loaded.task_baselines == {}
  runs = _by_run(loaded.rows)
  assert list(runs) == ["a", "b", "c", "d"]
  a = runs["a"]
  assert [r["tokens"] for r in a] == [20_000_000, 40_000_000, 60_000_000]
  assert [r["final"] for r in a] == [False, False, True]
  assert [r["step"] for r in a] == [1, 2, 3]  # positions: the file has no step column
  assert [r["source"] for r in a] == [f"{tmp_path / 'log.csv'}:{n}" for n in (2, 3, 6)]
  assert [r["loss/validation"] for r in a] == [3.5, 3.1, 3.0]
  assert all(r["N"] == 1_000_000 and r["M"] == 60.0 and r["model"] == "1M" for r in a)
  assert [r["flops"] for r in a] == [1.2e14, 2.4e14, 3.6e14]
  assert runs["c"][0]["N"] == 350_000 and runs["c"][0]["M"] == 20.0
  assert [r["N"] for r in runs["d"]] == [4_000_000] * 2 and runs["d"][1]["M"] == 40.0
  assert runs["d"][0]["model"] == "4M"  # a plain number gets a compact size label
  assert sum(r["final"] for r in loaded.rows) == 4 and loaded.notes == []
  for row in loaded.rows:
    runs_table.validate_row(row)


def test_a_design_point_named_after_a_run_selects_it(tmp_path):
  rows = _load(tmp_path, "run,params,tokens,loss\na,3M,50M,3.3\na,3M,100M,3.1\n").rows
  assert rows[0]["M"] == rows[1]["M"] == 33.3333  # 100M / 3M, to the 6 figures of %g
  points = points_lib.point_rows(rows)
  (point,) = points_lib.select_points(points, [points_lib.point_label(runs_table.run_key(rows[0]))])
  assert point["tokens"] == 100_000_000 and point["final"]


def test_optional_columns_run_from_and_dataset(tmp_path):
  text = ("arch,size,seen,it,fl,seed,corpus,val,lr\n"
          "gpt,70M,1.4B,100,1e18,0,web,3.2,1e-3\n"
          "gpt,70M,2.8B,200,2e18,0,web,3.0,1e-3\n"
          "gpt,70M,1.4B,100,1e18,1,web,3.25,1e-3\n")
  loaded = _load(tmp_path, text, columns=dict(
      run="", params="size", tokens="seen", loss="val", family="arch", step="it",
      flops="fl", seed="seed", dataset="corpus"), run_from=["arch", "size", "seed"],
      eval_set="web_val")
  runs = _by_run(loaded.rows)
  assert list(runs) == ["gpt_70M_0", "gpt_70M_1"]
  first = runs["gpt_70M_0"][0]
  assert (first["model"], first["seed"], first["dataset"], first["step"], first["flops"],
          first["N"], first["tokens"], first["loss/web_val"]) == (
              "gpt", 0, "web", 100, 1e18, 70_000_000, 1_400_000_000, 3.2)
  assert runs["gpt_70M_1"][0]["final"] and runs["gpt_70M_1"][0]["M"] == 20.0


def test_tokens_from_steps_and_size_names(tmp_path):
  text = "name,step,loss\nbase,10,3.0\nbase,20,2.8\nxl,10,2.5\n"
  loaded = _load(tmp_path, text, columns=dict(run="name", params="name", tokens="",
                                               step="step"),
                 tokens_per_step=1000.0, size_names="{'base': '248M', 'xl': 2.85e9}")
  assert [(r["run"], r["N"], r["tokens"], r["step"], r["model"]) for r in loaded.rows] == [
      ("base", 248_000_000, 10_000, 10, "base"), ("base", 248_000_000, 20_000, 20, "base"),
      ("xl", 2_850_000_000, 10_000, 10, "xl")]


def test_a_published_table_of_n_c_loss_gets_tokens_from_flops_and_a_run_per_row(tmp_path):
  # The usual published layout: no run column, no tokens, training FLOPs C = 6 N D.
  text = "Parameters,Training FLOPs,Loss\n70M,4.2e18,3.5\n7e7,8.4e18,3.3\n140M,8.4e18,3.2\n"
  loaded = _load(tmp_path, text, columns=dict(
      run="", params="Parameters", tokens="", flops="Training FLOPs", loss="Loss"))
  assert [(r["run"], r["N"], r["tokens"], r["flops"], r["final"]) for r in loaded.rows] == [
      ("70M_10Btok", 70_000_000, 10_000_000_000, 4.2e18, True),
      ("70M_20Btok", 70_000_000, 20_000_000_000, 8.4e18, True),
      ("140M_10Btok", 140_000_000, 10_000_000_000, 8.4e18, True)]
  # A table that counts C = 8 N D (say) states it: tokens follow.
  loaded = _load(tmp_path, text, columns=dict(
      run="", params="Parameters", tokens="", flops="Training FLOPs", loss="Loss"),
                 flops_per_param_token=8.0)
  assert [r["tokens"] for r in loaded.rows] == [7_500_000_000, 15_000_000_000,
                                                7_500_000_000]


def test_jsonl_reads_like_csv(tmp_path):
  lines = [{"run": r, "params": p, "tokens": t, "loss": l} for r, p, t, l in (
      ("a", "1M", 2e7, 3.5), ("a", 1e6, "40M", 3.1), ("b", "2M", 40_000_000, 3.2))]
  text = "".join(json.dumps(line) + "\n" for line in lines)
  jsonl = _load(tmp_path, text, name="log.jsonl").rows
  csv_rows = _load(tmp_path, "run,params,tokens,loss\na,1M,2e7,3.5\na,1M,40M,3.1\n"
                   "b,2M,40M,3.2\n").rows
  strip = lambda rows: [{k: v for k, v in r.items() if k != "source"} for r in rows]  # noqa: E731
  assert strip(jsonl) == strip(csv_rows) and len(jsonl) == 3
  assert jsonl[1]["source"].endswith("log.jsonl:2")


def test_exact_duplicates_count_once_and_are_noted(tmp_path):
  loaded = _load(tmp_path, DEFAULT_LAYOUT + "d,4e6,1.6e8,2.6\nd,4e6,1.6e8,2.6\n")
  assert len(loaded.rows) == 8
  (note,) = loaded.notes
  assert "2 duplicate row(s)" in note and "log.csv:10 (= " in note and "log.csv:9)" in note


def test_unordered_logs_sort_by_tokens(tmp_path):
  text = "run,params,tokens,loss\na,1M,40M,3.1\na,1M,20M,3.5\n"
  with pytest.raises(common.RunsError, match=r"log.csv:3: run 'a': tokens go backwards"
                     r".*after 40,000,000 at .*log.csv:2"):
    _load(tmp_path, text)
  rows = _load(tmp_path, text, unordered=True).rows
  assert [(r["tokens"], r["final"]) for r in rows] == [(20_000_000, False), (40_000_000, True)]


# Each malformed input: (file text, config overrides, what the message must say).
HEADER = "run,params,tokens,loss\n"
MALFORMED = {
    "missing column": (HEADER + "a,1M,2M,3\n", dict(columns=dict(loss="val_loss")),
                       [r"columns.loss' names column 'val_loss'", r"did you mean 'loss'",
                        r"its columns: 'run', 'params', 'tokens', 'loss'"]),
    "empty loss": (HEADER + "a,1M,2M,3\na,1M,4M,\n", {},
                   [r"log.csv:3: column 'loss' \(loss\) is empty", r"1 of 2 rows",
                    r"\['a'\]"]),
    "nan loss": (HEADER + "a,1M,2M,3\na,1M,4M,nan\n", {},
                 [r"log.csv:3 \(run 'a'\): column 'loss' \(loss\) is 'nan'",
                  r"filter \"loss != nan\""]),
    "text loss": (HEADER + "a,1M,2M,low\n", {}, [r"log.csv:2 .*'loss' .*'low', not a number"]),
    "negative loss": (HEADER + "a,1M,2M,-0.75\n", {},
                      [r"log.csv:2 .*'loss' \(loss\) is '-0.75'.*positive"]),
    "summed loss": (HEADER + "a,1M,2M,148383.17\n", {},
                    [r"log.csv:2 .*'loss' .*above 100 nats", r"loss_scale"]),
    "zero params": (HEADER + "a,0,2M,3\n", {},
                    [r"log.csv:2 .*column 'params' \(params\) is '0'"]),
    "bad params": (HEADER + "a,2.8Q,2M,3\n", {},
                   [r"log.csv:2 .*column 'params' \(params\) is '2.8Q', neither a count",
                    r"size_names"]),
    "negative tokens": (HEADER + "a,1M,-5,3\n", {},
                        [r"log.csv:2 .*column 'tokens' \(tokens\) is '-5'"]),
    "bad tokens": (HEADER + "a,1M,many,3\n", {},
                   [r"log.csv:2 .*column 'tokens' \(tokens\): 'many' is not a count"]),
    "zero step": ("run,params,it,loss\na,1M,0,3\n",
                  dict(columns=dict(tokens="", step="it"), tokens_per_step=10.0),
                  [r"log.csv:2 .*column 'it' \(step\) is '0'", r"filter 'it > 0'"]),
    "fractional step": ("run,params,it,loss\na,1M,1.5,3\n",
                        dict(columns=dict(tokens="", step="it"), tokens_per_step=10.0),
                        [r"log.csv:2 .*column 'it' \(step\) is '1.5', not a whole number"]),
    "tokens backwards": (HEADER + "a,1M,4M,3\na,1M,2M,3.2\n", {},
                         [r"log.csv:3: run 'a': tokens go backwards", r"log.csv:2",
                          r"run_from"]),
    "conflicting repeat": (HEADER + "a,1M,2M,3\na,1M,2M,3.2\n", {},
                           [r"log.csv:2 and .*log.csv:3: run 'a' has two rows at tokens "
                            r"2,000,000", r"loss/validation 3.0 vs 3.2"]),
    "params change": (HEADER + "a,1M,2M,3\na,2M,4M,2.9\n", {},
                      [r"log.csv:2 and .*log.csv:3: run 'a' has N 1000000 and 2000000 "
                       r"\(column 'params'\)"]),
    "unknown size name": ("size,tokens,loss\nxl,2M,3\n",
                          dict(columns=dict(run="size", params="size"),
                               size_names="{'base': 248e6}"),
                          [r"log.csv:2 .*column 'size' \(params\) is 'xl'",
                           r"size_names.*it has \['base'\]"]),
    "filter column": (HEADER + "a,1M,2M,3\n", dict(filters=["tokns > 1"]),
                      [r"filters' entry 'tokns > 1' names column 'tokns'",
                       r"did you mean 'tokens'"]),
    "filter operator": (HEADER + "a,1M,2M,3\n", dict(filters=["run = a"]),
                        [r"filters' entry 'run = a': bad operator '='"]),
    "filter text order": (HEADER + "a,1M,2M,3\n", dict(filters=["run > a"]),
                          [r"filters' entry 'run > a': '>' needs a number"]),
    "filtered to nothing": (HEADER + "a,1M,2M,3\nb,1M,2M,3\n",
                            dict(filters=["run != b", "tokens > 5M"]),
                            [r"no rows left", r"'run != b' removed 1 of 2",
                             r"'tokens > 5M' removed 1 of 1", r"values of 'tokens'"]),
    "zero tokens_per_step": ("run,params,it,loss\na,1M,5,3\n",
                             dict(columns=dict(tokens="", step="it"), tokens_per_step=0.0),
                             [r"no tokens column", r"columns.flops'.*C / \(6 N\)",
                              r"tokens_per_step' > 0", r"neither is set"]),
    "bad flops factor": ("params,fl,loss\n1M,6e12,3\n",
                         dict(columns=dict(run="", tokens="", flops="fl"),
                              flops_per_param_token=0.0),
                         [r"flops_per_param_token' is 0", r"C / \(this x N\)"]),
    "flops tokens empty": ("params,fl,loss\n1M,,3\n",
                           dict(columns=dict(run="", tokens="", flops="fl")),
                           [r"log.csv:2: column 'fl' \(flops\) is empty"]),
    "negative tokens_per_step": ("run,params,it,loss\na,1M,5,3\n",
                                 dict(columns=dict(tokens="", step="it"),
                                      tokens_per_step=-4.0),
                                 [r"tokens_per_step' is -4"]),
    "tokens twice": (HEADER + "a,1M,2M,3\n", dict(tokens_per_step=4.0),
                     [r"tokens_per_step' is 4 and columns.tokens is 'tokens': pick one"]),
    "flops fall": ("run,params,tokens,loss,fl\na,1M,2M,3,9e20\na,1M,4M,2.9,5e20\n",
                   dict(columns=dict(flops="fl")),
                   [r"log.csv:3: run 'a': FLOPs fall", r"column 'fl' is not"]),
    "wrong field count": (HEADER + "a,1M,2M\n", {}, [r"log.csv:2: 3 fields"]),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_input_is_named(tmp_path, kind):
  text, overrides, patterns = MALFORMED[kind]
  with pytest.raises(common.RunsError) as error:
    _load(tmp_path, text, **overrides)
  message = str(error.value)
  assert str(tmp_path / "log.csv") in message
  for pattern in patterns:
    assert re.search(pattern, message), f"{kind}: {pattern!r} not in {message!r}"


def test_missing_file_bad_json_and_unknown_format_are_named(tmp_path):
  with pytest.raises(common.RunsError, match=r"nothere.csv: no such file"):
    csv_logs.load(tmp_path / "nothere.csv", _config())
  with pytest.raises(common.RunsError, match=r"log.jsonl:2: not valid JSON"):
    _load(tmp_path, '{"run": "a"}\n{"run": \n', name="log.jsonl")
  with pytest.raises(common.RunsError, match=r"log.txt: unknown log format '.txt'"):
    _load(tmp_path, HEADER, name="log.txt")


def test_counts_parse_suffixes_and_reject_words():
  assert [csv_logs.parse_count(t) for t in ("2.8B", "7B", "350M", "1.5e9", "12k", "1T", 42)] \
      == [2.8e9, 7e9, 3.5e8, 1.5e9, 1.2e4, 1e12, 42.0]
  for text in ("2.8Q", "base", "", "nan", "1.2.3"):
    with pytest.raises(ValueError):
      csv_logs.parse_count(text)


# The real files of ColPret (see ../shared/data/colpret_curves/SOURCE.md).
DATABLATIONS = dict(columns=dict(params="num_params", tokens="token_num", dataset="data"),
                    run_from=["data", "num_params"], filters=["epochs == 1", "data == c4"])


def test_datablations_single_epoch_c4_runs(curves_dir):
  loaded = csv_logs.load(curves_dir / "datablations_losses.csv", _config(**DATABLATIONS))
  runs = _by_run(loaded.rows)
  assert {run: (rows[0]["N"], len(rows), rows[-1]["tokens"]) for run, rows in runs.items()} == {
      "c4_2.8B": (2_800_000_000, 508, 54_999_908_352),
      "c4_4.2B": (4_200_000_000, 81, 83_999_326_208),
      "c4_8.7B": (8_700_000_000, 84, 177_999_970_304)}
  for rows in runs.values():
    tokens = [r["tokens"] for r in rows]
    assert tokens == sorted(set(tokens)) and [r["final"] for r in rows][-2:] == [False, True]
    assert {r["dataset"] for r in rows} == {"c4"} and 19.6 < rows[0]["M"] < 20.5
  assert "'epochs == 1' removed 8095 of 9261; 'data == c4' removed 493 of 1166" in loaded.notes[0]


def test_datablations_quirks_are_refused_with_the_rows(curves_dir):
  path = curves_dir / "datablations_losses.csv"
  # Without the epochs filter, eight runs (1 to 44 epochs) share each name.
  with pytest.raises(common.RunsError, match=r"datablations_losses.csv:2 and .*:370: run "
                     r"'c4_2.8B' has two rows at tokens 104,857,600"):
    csv_logs.load(path, _config(**dict(DATABLATIONS, filters=["data == c4"])))
  # Its flops column falls as tokens rise (it is not the FLOPs trained so far).
  with pytest.raises(common.RunsError, match=r"datablations_losses.csv:3046: run 'c4_2.8B': "
                     r"FLOPs fall from 4.878e\+23"):
    csv_logs.load(path, _config(**dict(DATABLATIONS, columns=dict(
        DATABLATIONS["columns"], flops="flops"))))


OLMO = dict(columns=dict(run="model_name", params="num_params", tokens="", step="Step",
                         loss="c4_en-validation/CrossEntropyLoss"),
            tokens_per_step=float(OLMO_TOKENS_PER_STEP))


def test_olmo_tokens_from_steps_agree_with_its_checkpoint_names(curves_dir):
  path = curves_dir / "olmo.csv"
  with pytest.raises(common.RunsError, match=r"olmo.csv:2: column 'c4_en-validation/"
                     r"CrossEntropyLoss' \(loss\) is empty; it is empty in 1179 of 1708 "
                     r"rows, of run\(s\) \['OLMo-1B', 'OLMo-7B-Twin-2T'\]"):
    csv_logs.load(path, _config(**OLMO))
  seven = csv_logs.load(path, _config(**OLMO, filters=[
      "c4_en-validation/CrossEntropyLoss != ''"])).rows
  # OLMo-1B logs its C4 loss only as v3-small-c4_en; its name has a trailing blank.
  one = csv_logs.load(path, _config(**dict(OLMO, columns=dict(
      OLMO["columns"], loss="v3-small-c4_en-validation/CrossEntropyLoss")),
      filters=["model_name == OLMo-1B"], eval_set="v3-small-c4_en")).rows
  assert ({r["run"] for r in seven}, len(seven), seven[-1]["step"]) == ({"OLMo-7B"}, 529, 556_000)
  assert ({r["run"] for r in one}, len(one), one[-1]["step"]) == ({"OLMo-1B"}, 735, 738_000)
  assert seven[0]["N"] == 7_000_000_000 and one[0]["N"] == 1_000_000_000  # nominal sizes
  assert 2.3 < seven[-1]["loss/validation"] < 2.4 and "loss/v3-small-c4_en" in one[0]
  # Each checkpoint's revision 'stepS-tokensTB' rounds S x tokens_per_step to T billion.
  with path.open(newline="", encoding="utf-8") as f:
    named = {(r["model_name"].strip(), int(r["Step"])): int(m[1]) for r in csv.DictReader(f)
             if (m := re.search(r"tokens(\d+)B", r["checkpoint"]))}
  checked = [(row["tokens"], named[row["run"], row["step"]]) for row in seven + one
             if (row["run"], row["step"]) in named]
  assert len(checked) == 529 + 554
  assert all(round(tokens / 1e9) == billions for tokens, billions in checked)


T5 = dict(columns=dict(run="model_name", params="model_name", tokens="", step="steps"),
          tokens_per_step=2048 * 512.0, size_names=T5_SIZES, unordered=True)


def test_t5_sizes_and_its_summed_and_negative_losses(curves_dir):
  path = curves_dir / "t5_pile.csv"
  with pytest.raises(common.RunsError, match=r"t5_pile.csv:2 \(run 'xxl'\): column 'steps' "
                     r"\(step\) is '0'.*filter 'steps > 0'"):
    csv_logs.load(path, _config(**T5))
  with pytest.raises(common.RunsError, match=r"t5_pile.csv:3 \(run 'xxl'\): column 'loss' "
                     r"\(loss\) is '148383.17', above 100 nats"):
    csv_logs.load(path, _config(**T5, filters=["steps > 0"]))
  with pytest.raises(common.RunsError, match=r"t5_pile.csv:3 \(run 'xxl'\): column "
                     r"'loss_per_all_target_tokens' \(loss\) is '-0.7569615'"):
    csv_logs.load(path, _config(**dict(T5, columns=dict(
        T5["columns"], loss="loss_per_all_target_tokens")), filters=["steps > 0"]))
  with pytest.raises(common.RunsError, match=r"t5_pile.csv:609 \(run 'xl'\): column "
                     r"'model_name' \(params\) is 'xl'"):
    csv_logs.load(path, _config(**dict(T5, size_names="{'base': 248e6}"),
                                filters=["steps > 0", "model_name == xl"]))


def test_t5_summed_cross_entropy_scaled_per_token(curves_dir):
  # cross_ent_loss sums over a batch's 2048 x 114 target tokens; xxl diverged around
  # step 600k (one 1.6e9 spike, seven NaN evals), which the last filter drops.
  loaded = csv_logs.load(curves_dir / "t5_pile.csv", _config(
      **dict(T5, columns=dict(T5["columns"], loss="cross_ent_loss")),
      loss_scale=1 / T5_TARGET_TOKENS, filters=["steps > 0", "cross_ent_loss < 1e9"]))
  runs = _by_run(loaded.rows)
  final = {run: (rows[0]["N"], len(rows), rows[-1]["step"]) for run, rows in runs.items()}
  assert final == {"xxl": (11_135_332_352, 195, 2_000_000),
                   "large": (783_150_080, 200, 2_000_000),
                   "base": (247_577_856, 200, 2_000_000),
                   "xl": (2_849_757_184, 200, 2_000_000)}
  losses = [runs[size][-1]["loss/validation"] for size in ("base", "large", "xl", "xxl")]
  assert losses == sorted(losses, reverse=True) and 0.5 < losses[-1] < losses[0] < 1.0
  assert "'cross_ent_loss < 1e9' removed 8 of 803" in loaded.notes[0]


def test_one_size_written_two_ways_is_one_run_and_one_design_point(tmp_path):
  # '300M' in one row and '0.3B' in the next: one model, so one (model, M) point,
  # and with the size in the run name, one run.
  text = ("family,params,tokens,loss\n"
          "gpt,300M,3B,3.1\n"
          "gpt,0.3B,6B,3.0\n")
  csv_cfg = csv_logs.default_csv_config()
  csv_cfg.run_from = ("family", "params")
  path = tmp_path / "log.csv"
  path.write_text(text)
  rows = csv_logs.load(path, csv_cfg).rows
  assert {r["run"] for r in rows} == {"gpt_300M"}
  assert {r["model"] for r in rows} == {"300M"}
