"""The protocol: load, idle baseline, identical warm-up, measured windows, statistics, isolation."""
