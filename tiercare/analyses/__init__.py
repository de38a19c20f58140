"""Analysis runs started from the web app: access analyses and optimisations, with progress."""
