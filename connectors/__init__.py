"""listenwell connectors: the outside world turned into Mention records (never imports Faust)."""
