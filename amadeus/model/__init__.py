"""Stage 2, model: the Performance RNN and what runs it.

`network` (the original's names and shapes), `recurrence` (the whole-window GRU for training),
`session` (`.sess` files), `stepper` (one generation step, as fast as the hardware allows),
`loss` (the loss over fixed windows: validation and fp32 against int8), `device` (--device,
training precision).

Imports the data stage and the shared plumbing; knows nothing of MIDI files or int8.
"""
