"""Local HTTP servers that speak the real APIs of the connectors' sources (tests only)."""
