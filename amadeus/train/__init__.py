"""Stage 3, training: `loop` (train.py's run, read top to bottom: batches, steps, validation,
saving, resume, DDP under torchrun) and `schedule` (the learning-rate curve).

Imports data and model; nothing of quantization, generation, evaluation or live play.
"""
