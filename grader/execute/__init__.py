"""Running one notebook: nbclient client, kernel sandbox, resource limits, preflight, the sealed bundle."""
