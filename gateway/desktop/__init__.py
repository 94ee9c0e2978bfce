"""The agent desktop page: static files in `static/` and the routes that serve them (see `site.py`)."""
