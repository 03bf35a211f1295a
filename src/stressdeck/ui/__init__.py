"""The Textual console. Imports the engine; the engine never imports this package."""
