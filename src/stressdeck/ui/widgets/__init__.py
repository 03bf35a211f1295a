"""Dashboard widgets; each is pushed data (``show``) and renders only that."""
