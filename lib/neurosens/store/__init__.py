"""The artifact store (weights, configs, per-example flags) and the analysis cache."""
