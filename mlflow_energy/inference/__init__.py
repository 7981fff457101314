"""What work is measured: model loading, prompts and batches, fixed-length generation."""
