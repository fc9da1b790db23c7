"""The run's report: per-task tables, a model x task summary, the speed table and two plots.

`tables.py` (the markdown report, written by `build_report`), `plots.py` (loss curves, score
against speed), `formatting.py` (how a figure, a speed cell or a label is written, shared with
the model cards), `inputs.py` (the eval and bench JSONs read back). Nothing is imported here:
a caller names the module it needs.
"""
