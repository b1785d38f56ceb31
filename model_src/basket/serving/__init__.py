"""Answering: online requests parsed (`requests`) and answered (`online`), the same
`Recommender.recommend` scoring customers in batch (`batch`), the winner packaged for
TorchServe (`package`, `torchserve`) and Triton (`triton/`), and the history store that
requests by customer id read (`store/`). Never imports the training layer.

Kept import-free: the Triton client runs this package in an environment with numpy<2 only."""
