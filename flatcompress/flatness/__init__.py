"""Flat minima: SAM, ε-sharpness and the top Hessian eigenvalue, dropout replay, the 2-D toy."""
