"""The orders endpoints of the site's API: placing an order and reading it back."""
