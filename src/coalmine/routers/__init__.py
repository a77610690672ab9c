"""Traffic routing: one module per mesh/ingress provider behind the `Router` protocol, and the
Kubernetes Services of workload targets behind `ServiceRouter` (see `routers.base`)."""
