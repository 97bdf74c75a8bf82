"""listenwell services: the processes users run (CLI, notifier), settings and metrics."""
