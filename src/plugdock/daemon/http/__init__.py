"""The HTTP side: the official daemon's API as FastAPI routers, guards and the plain-ASGI dispatch fast path."""
