"""runbook-runner: GitOps runbook-as-code automation runner."""
