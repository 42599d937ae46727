"""A minimal Django project configured in-process (no settings module on disk, no database)."""
