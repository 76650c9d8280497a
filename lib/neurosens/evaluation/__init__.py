"""Evaluation of stored models under the registry's attacks: per-example flags and self-checks."""
