"""`cnnlab-report FOLDER...`: one table, a statistical verdict and a few figures from sweeps' run folders.

    cnnlab -m optim=sgd,adam seed=0,1,2 hydra.sweep.dir=outputs/multirun/optimizers
    cnnlab-report outputs/multirun/optimizers     # writes report.md, report.csv and figures/ into that folder

collect finds the runs (and their failed attempts), group turns runs that differ only in `seed` into
one configuration, compare and stats decide which won (Welch's t-test, Holm-corrected), table and
per_class write report.md, export writes report.csv, figures draws the curves.
"""
