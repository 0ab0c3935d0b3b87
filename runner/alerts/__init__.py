"""Alerts: the model, each source's format (Alertmanager, Grafana, generic), and files of them."""
