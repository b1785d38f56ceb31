"""basket: predict a grocery customer's next basket from their past orders.

The package follows one flow, one layer per folder (the docs' Architecture page):

    io, resources -> config -> data -> validation -> models -> training | serving
        -> orchestration -> commands

What a user may import is named here, in `__all__`: the stage functions, one per step of the
flow (paths in, paths or small results out), and the `Recommender` protocol with the model
loader. Each name is imported on first use, so `import basket` stays light (the DAG files
import the package without torch or xgboost). Everything else may move between releases.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> "module:attribute"; the docs' Python API page is generated from this table.
PUBLIC_API = {
    # data
    "SynthConfig": "basket.data.synth:SynthConfig",
    "write_synthetic": "basket.data.synth:write_synthetic",
    "import_transactions": "basket.data.importer:import_transactions",
    "import_completejourney": "basket.data.importer:import_completejourney",
    # validation
    "validate": "basket.validation.validate:validate",
    # training and comparison
    "RunConfig": "basket.config.run:RunConfig",
    "load_config": "basket.config.run:load_config",
    "retrain": "basket.training.retrain:retrain",
    # models
    "Recommender": "basket.models.base:Recommender",
    "Recommendations": "basket.models.base:Recommendations",
    "load_model": "basket.models.registry:load_model",
    # packaging, serving and batch
    "package": "basket.serving.package:package",
    "OnlineScorer": "basket.serving.online:OnlineScorer",
    "score_users": "basket.serving.batch:score_users",
    "load_snapshot": "basket.serving.store.fill:load_snapshot",
    "append_orders": "basket.serving.store.fill:append_orders",
    # orchestration
    "publish": "basket.orchestration.publish:publish",
}
__all__ = ["__version__", *PUBLIC_API]


def __getattr__(name: str):
    """`basket.NAME` for a name of `PUBLIC_API`, imported from its module on first use."""
    if name not in PUBLIC_API:
        raise AttributeError(f"module 'basket' has no attribute {name!r}")
    module, _, attribute = PUBLIC_API[name].partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
