"""Post-training int8 quantization: the back-ends and the records of quantized models."""
