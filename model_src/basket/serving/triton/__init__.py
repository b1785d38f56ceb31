"""Triton: the model repository (`repository`), the Python-backend model it runs (`model`),
the export of a `basket.mar` as a repository (`export`) and a tritonclient front end
(`client`)."""
