"""Warnings one line each where the reader starts; every word of them under Details.

A study's notes (fit.notes: a law that did not converge, a design too small for its
intervals, a run left out) and its caveats (caveats.py) often run to a paragraph
that ends with the fix. Set in full above the targets they buried the answer, so
summary.md and the console give each as a headline (its first sentence, cut at a
clause when that is still long) and summary.md keeps the full text under Details.
"""
from __future__ import annotations

import re

# A headline's length at most, in characters: one line of a terminal or an editor
# beside its "- " or "WARNING: ".
HEADLINE_CHARS = 160
# What ends a headline that leaves part of its sentence out.
CLIPPED = " ..."
# A sentence's end: a full stop and a space, but not in "e.g. ", "Eq. 4" or "1. ".
_SENTENCE_END = re.compile(r"(?<!\bEq)(?<!\b\w)\.\s")
# Where a long sentence may be cut, most telling first: a clause, a phrase, a word.
_CUTS = ("; ", ", ", " ")
SECTION = "Details"


def headline(text: str, limit: int = HEADLINE_CHARS) -> str:
  """`text`'s first sentence on one line, cut at a clause if longer than `limit`;
  ' ...' ends it when anything of `text` is left out."""
  flat = " ".join(str(text).split())
  whole = flat.rstrip(".")
  first = _SENTENCE_END.split(flat, maxsplit=1)[0].rstrip(".")
  if len(first) > limit:
    first = _cut(first, limit)
  return first if first == whole else first + CLIPPED


def _cut(sentence: str, limit: int) -> str:
  """The longest start of `sentence` within `limit` that ends at a clause boundary
  outside brackets (else a phrase's, else a word's); a third of `limit` at least."""
  depth, ends = 0, {cut: 0 for cut in _CUTS}
  for i, ch in enumerate(sentence[:limit + 1]):
    depth += (ch in "([") - (ch in ")]")
    for cut in _CUTS:
      if depth <= 0 and sentence.startswith(cut, i) and i >= limit // 3:
        ends[cut] = i
  for cut in _CUTS:
    if ends[cut]:
      return sentence[:ends[cut]].rstrip(",;:")
  return sentence[:limit]


def _caveat_text(caveat: str) -> str:
  return caveat + "."


def top_section(notes, caveats) -> list[str]:
  """'## Warnings': a line each, the study's notes, then its numbers to read with care."""
  if not notes and not caveats:
    return []
  return ["## Warnings", "", *[f"- {headline(n)}" for n in notes],
          *[f"- Read with care: {headline(_caveat_text(c))}" for c in caveats], "",
          f"Each in full under {SECTION}, below.", ""]


def details_section(notes, caveats, more=()) -> list[str]:
  """'## Details': every note and caveat in full, then `more` (lines of further
  subsections); [] when there is nothing to say."""
  lines = []
  if notes:
    lines += ["### Warnings", "", *[f"- **{note}**" for note in notes], ""]
  if caveats:
    lines += ["### Read with care", "", *[f"- {_caveat_text(c)}" for c in caveats], ""]
  lines += list(more)
  return [f"## {SECTION}", "", *lines] if lines else []


def warning_line(note: str) -> str:
  """A note as the console prints it at the end of a study."""
  return f"WARNING: {headline(note)}"


def console_lines(notes, caveats) -> list[str]:
  """A line each for the console, notes first, and where to read them in full."""
  lines = [warning_line(n) for n in notes]
  lines += [f"Read with care: {headline(_caveat_text(c))}" for c in caveats]
  if any(line.endswith(CLIPPED) for line in lines):
    lines.append(f"Each in full: summary.md, under {SECTION}.")
  return lines
