"""Flat minima: SAM, SWA, ε-sharpness and the top Hessian eigenvalue, dropout replay, the 2-D toy, loss contours."""
