"""Helpers shared by the test suite (kept in the package, like optuna.testing)."""
