"""Every setting, defined once: the candidate table (`candidates`), a training run's typed
config (`run`), the flags derived from it (`settings`), and what serving and batch scoring
may be asked for (`serving`). Plain dataclasses: the CLI, the DAG files and the servers read
them without loading torch or xgboost."""
