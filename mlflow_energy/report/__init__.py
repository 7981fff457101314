"""Tables and figures built from results: console summary, power timeline plot."""
