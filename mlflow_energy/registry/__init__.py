"""Which run is the most efficient one still good enough, and its model registered and served."""
