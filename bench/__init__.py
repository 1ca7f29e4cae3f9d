"""lrbench: the framework-neutral core. Imports no deep-learning framework.

Its modules in three layers, each importing only from its own and those above it (a core
test, tests/test_layers.py, holds them to it), then the command line on top:

1. What a study is: ``errors``, ``params`` (typed declarations), ``schedules`` (the
   reference), ``models`` (architectures), ``init`` (initial weights), ``layout``
   (weights in each framework's layout), ``data``, ``schema`` (the results' columns and
   metrics), ``outcome`` (when a run has collapsed), ``evidence`` (the decision rules),
   ``calibration`` (their error rates),
   ``optimizers`` (their parameters and reference update), ``claims`` (the claim
   language), ``configs`` and ``spec`` (study files).
2. Running and storing it: ``lr_control`` (a schedule's lr at each step), ``progress``
   (the terminal), ``worker_output`` (frameworks' output kept off it), ``runner`` (one run),
   ``lifeline``, ``executors`` (where runs execute), ``results``
   (rows and manifests), ``provenance``, ``timing``, ``perf``, ``find_lr``.
3. Reading and showing it: ``ran`` (what ran), ``answers`` (the first page's words),
   ``plots``, ``drawn`` (which figures are up to date), ``verdict_figures`` (the evidence
   at a glance), ``page`` (blocks as markdown and HTML), ``report``.

Then ``cli``. The adapters (``backends/``) sit beside layer 2: the runner loads them.
"""

__version__ = "0.1.0"
