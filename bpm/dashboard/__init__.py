"""The operators' dashboard: pages inside the Django admin site, rendered on the server, htmx."""
