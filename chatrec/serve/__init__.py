"""The HTTP edge: FastAPI app, routes, access control, the bounded model queue and the widget."""
