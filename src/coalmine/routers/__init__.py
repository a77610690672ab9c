"""Routers: one module per traffic provider (service mesh or ingress) plus the Kubernetes Service router."""
