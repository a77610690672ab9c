"""Routers: one module per traffic provider, plus the Kubernetes Services every workload needs."""
