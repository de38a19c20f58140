"""The web app: FastAPI application factory, API routers and server-rendered pages."""
