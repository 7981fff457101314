"""What work is measured: model loading, prompts and batches, fixed-length generation, quality,
the serving scenario's server and load, and what this machine can run of a configuration."""
