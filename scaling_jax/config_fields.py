"""One wording for a config field that must take one of a few values.

Every section's check says the same thing the same way: the field's full name, the
value given, the values allowed (and why, where a note helps), so a user fixes it
from the message alone.
"""
from __future__ import annotations

from typing import Sequence


def choice_problem(field: str, value, choices: Sequence, note: str = "") -> str | None:
  """None if `value` is one of `choices`, else the message naming `field`."""
  if value in choices:
    return None
  return (f"config field '{field}' is {value!r}; use one of {tuple(choices)}"
          + (f" ({note})" if note else ""))


def require_choice(field: str, value, choices: Sequence, error: type = ValueError,
                   note: str = "") -> None:
  """Raises `error` with choice_problem's message unless `value` is allowed."""
  problem = choice_problem(field, value, choices, note)
  if problem:
    raise error(problem)
