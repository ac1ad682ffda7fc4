"""Unstructured pruning: global magnitude masks, mask files, iterative pruning (IMP), one-shot curves."""
