"""coalmine: progressive delivery for anything behind a Kubernetes Service."""

__version__ = "0.1.0"
