"""The catalog: runbooks, owners, policy and inventory read from git YAML, checked, and kept live."""
