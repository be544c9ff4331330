"""The fitting layer: the runs table's rows + config.study -> fitted laws and answers.

  points.py         design points ('model@M'), seed means, designs and targets
  task_subset.py    which downstream tasks enter the error (the paper's rule)
  noise_sources.py  where the bootstrap's noise scale comes from
  study_fit.py      Eq. 4 and Eq. 5 on final points, bootstrapped: `fit`
  predictions.py    predictions with intervals and influences for rows and targets
  curves.py         Eq. 3 on every checkpoint (Choshen et al.): `fit`
  advice.py         which runs to train next; retrospective.py replays it
  settings.py       config.study: each section from its owner, checked once

Each module owns its section of config.study and reads only it; `laws/` below
knows nothing of configs. This file holds only the error every module raises, so
any of them can be imported alone.
"""


class StudyError(ValueError):
  """The config or the rows cannot support the fit asked for; says which and why."""
