"""Stage 4, int8: post-training 8-bit quantization. Calibration statistics (Distiller's YAML),
the range-linear formulas and int8 Linear on a real int8 kernel, the GRU split into cells so
that each gate Linear can be quantized, the int8 stepper and its compiled fp16 cell,
`.int8.sess` files, and quantize.py's run.

Imports data and model (the int8 model offers the float one's interface); never training,
generation or evaluation.
"""
