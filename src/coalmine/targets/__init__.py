"""Target kinds (Deployment, DaemonSet, Service), their autoscalers and tracked configs.

The modules here are pure: they turn a Canary and the objects read from the cache into the objects
that should exist, and into readiness verdicts. The I/O layer compares and writes.
"""
