"""The REST API: thin views over the same services the dashboard, admin and commands call."""
