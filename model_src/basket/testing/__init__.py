"""Harnesses for tests and benchmarks: real deployments started on free local ports.

Nothing in production imports from here.
"""
