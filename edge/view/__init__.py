"""The clinic view: the overlay drawing, the web view (serve), its metrics, the /app/ runner."""
