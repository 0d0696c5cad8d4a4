"""The local twin: the same handlers and schema as the cloud, on this machine."""
