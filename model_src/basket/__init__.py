"""basket: predict a grocery customer's next basket from their past orders.

The package follows one flow (see the README and DESIGN.md): load and validate
Instacart-layout tables, build per-user histories, learn product embeddings,
train and compare candidate recommenders, package the winner, serve and score.
"""

__version__ = "0.1.0"
