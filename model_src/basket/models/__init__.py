"""Candidate recommenders, one file per family; each implements
`basket.models.base.Recommender`, and `basket.models.registry` lists them all."""
