"""Dagster Pipes on Databricks: the alternative to the step launcher for new workspaces.

Not part of the main code location; see `assets.py`.
"""
