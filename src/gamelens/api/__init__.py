"""HTTP API: create_app() in app.py; thin routes in uploads.py, games.py, meta.py."""
