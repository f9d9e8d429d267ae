"""The customers endpoints of the site's API: payments owns customer accounts and their credit."""
