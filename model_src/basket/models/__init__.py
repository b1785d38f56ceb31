"""Candidate recommenders; each implements `basket.models.base.Recommender`."""
