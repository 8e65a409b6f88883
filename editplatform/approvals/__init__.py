"""Four-eyes approval of sensitive edit jobs."""
