"""Structured pruning with distillation (CoFi): hard-concrete gates, the structure shapes, the gated
model, the run."""
