"""The runtime: watches, per-canary jobs, leader election, and the HTTP endpoints."""
