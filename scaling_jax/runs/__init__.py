"""The runs table and its sources (filled in by the one-flow refactor)."""
