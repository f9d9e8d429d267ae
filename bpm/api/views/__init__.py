"""The API's views, by resource (bpm/api/urls.py maps them)."""
