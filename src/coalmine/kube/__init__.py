"""The Kubernetes side of coalmine: client, watch caches, writes on difference, events, leases."""
