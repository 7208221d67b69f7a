"""The live operations page: the movement as operations staff watch it, with no personal data."""
