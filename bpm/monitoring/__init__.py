"""What monitoring reads: liveness and readiness probes, Prometheus metrics (docs/monitoring.md)."""
