"""Training and comparison: each candidate tuned on the validation baskets (`tuning`), every
candidate compared on the one held-out split (`compare`, `significance`, `plots`), and the
nightly pipeline's stages from a data folder to a run folder with its winner (`retrain`)."""
