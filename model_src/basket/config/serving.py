"""Serving settings, apart from the code that serves: what one request may ask for
(`RequestLimits`) and what an archive tells TorchServe (`ServingConfig`). Plain dataclasses,
so the CLI and the Triton export read them without loading a model library."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from basket.config.run import TrainConfig


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for; beyond these it gets a 4xx (configurable per archive)."""

    max_body_bytes: int = 1_000_000
    # Real households shop often: Complete Journey has up to 780 baskets a year, and a limit of
    # 100 refused 15 % of them online while batch scored them.
    max_orders: int = 1000
    max_products_per_order: int = 200
    max_name_length: int = 200
    max_k: int = 100
    default_k: int = TrainConfig.k  # the run's k unless a request asks for another

    @classmethod
    def from_mapping(cls, values: dict | None) -> RequestLimits:
        """Limits from a config mapping (e.g. the archive's model-config.yaml), unknown keys ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: int(value) for key, value in (values or {}).items() if key in known})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BatchConfig:
    """Batch scoring's sizes (`basket score` and the batch DAG)."""

    # Customers whose histories are in memory at once; beyond this the data is read in blocks.
    block_users: int = 50_000
    # Customers per shard of the batch DAG (the Variable basket_users_per_shard overrides it).
    users_per_shard: int = 50_000
    # Products of each customer's nightly answer kept in the history store; requests by id with
    # a larger k are answered live. 30 covers the default k (10) three times over at no
    # measurable cost to batch scoring; 100 (max_k) made an Instacart-scale `basket score`
    # 2.5x slower, the sparse models' ranking being filled out with products they did not score.
    answers_k: int = 30


@dataclass(frozen=True)
class ServingConfig:
    """TorchServe settings packed into the archive (model-config.yaml)."""

    model_name: str = "basket"
    workers: int = 2  # one per core on the 2-core reference machine
    batch_size: int = 8
    # How long a request may wait for a batch to fill. 1 ms: a lone request is answered almost
    # at once (5 ms cost c=1 p50 15.0 ms against 8.0 ms), and under load batches fill from the
    # queue anyway (c=16: 954 against 956 requests/s). 0 is not "no wait": TorchServe 0.12 then
    # answered a lone request in 123 ms.
    max_batch_delay_ms: int = 1
    response_timeout_s: int = 30
    torch_threads: int = 1  # per worker or instance: torch's threads and the model's own (XGBoost)
    limits: RequestLimits = field(default_factory=RequestLimits)

    @classmethod
    def from_model_yaml(cls, values: dict, model_name: str = "basket") -> ServingConfig:
        """The settings an archive's model-config.yaml holds (the inverse of `model_yaml`)."""
        settings = values.get("basket", {})
        return cls(
            model_name=model_name,
            workers=int(values.get("minWorkers", cls.workers)),
            batch_size=int(values.get("batchSize", cls.batch_size)),
            max_batch_delay_ms=int(values.get("maxBatchDelay", cls.max_batch_delay_ms)),
            response_timeout_s=int(values.get("responseTimeout", cls.response_timeout_s)),
            torch_threads=int(settings.get("torch_threads", cls.torch_threads)),
            limits=RequestLimits.from_mapping(settings),
        )

    def model_yaml(self) -> dict:
        """The model-config.yaml TorchServe reads (`basket:` is for the handler)."""
        return {
            "minWorkers": self.workers,
            "maxWorkers": self.workers,
            "batchSize": self.batch_size,
            "maxBatchDelay": self.max_batch_delay_ms,
            "responseTimeout": self.response_timeout_s,
            "basket": {"torch_threads": self.torch_threads, **self.limits.as_dict()},
        }
