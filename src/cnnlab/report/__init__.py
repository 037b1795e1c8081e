"""`cnnlab-report SWEEP_DIR`: one table and a few figures from a sweep's run folders.

    cnnlab -m optim=sgd,adam seed=0,1,2 hydra.sweep.dir=outputs/multirun/optimizers
    cnnlab-report outputs/multirun/optimizers     # writes report.md and figures/ into that folder

collect finds the runs, group turns runs that differ only in `seed` into one configuration,
table and compare write report.md, figures draws the curves.
"""
