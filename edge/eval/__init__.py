"""``edge-har eval``: accuracy on the site's own labelled video, and the thresholds that fit it.

One module per job:

- ``truth``: the two ground-truth layouts (``DATA/<class>/*.mp4``, or
  ``DATA/annotations.csv`` [+ ``checks.csv``]) and their one-line errors;
- ``predict``: the same engine as ``edge-har run`` over the videos (file
  cameras of one service, throughput mode), or recorded events files;
- ``match``: temporal IoU and greedy one-to-one matching; checks by time;
- ``metrics``: top-1/top-5, per class, confusion; segments; checks;
- ``sweep``: activities re-run over ``min_score`` × ``gap_s`` without inference;
- ``evaluate``: the flow, and the JSON of ``--json``;
- ``report``: ``--report DIR`` (index.html and PNGs; extra ``report``).
"""

from edge.eval.evaluate import Evaluation, evaluate, summary_table
from edge.eval.truth import EvalError

__all__ = ["EvalError", "Evaluation", "evaluate", "summary_table"]
