"""Post-training 8-bit quantization: calibration statistics, Distiller's range-linear scheme on a
real int8 kernel, and the GRU split into cells so that each gate Linear can be quantized."""
