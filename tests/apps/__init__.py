"""Small real applications the framework and server tests put behind the middleware."""
