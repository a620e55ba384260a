"""One module per resource, each with its ``router``: chat, openai, feedback, admin, health, site."""
