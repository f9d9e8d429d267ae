"""Serializers: what a request may say (validated strictly) and what a response looks like."""
