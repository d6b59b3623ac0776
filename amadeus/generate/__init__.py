"""Stage 5, generation: playing a model.

`loaded` (the one room that opens a `.sess` or `.int8.sess` ready to play: codec checked,
encoding settings, default rules), `shipped` (which model when none is named), `sampling` (the
rules: valid events, the note limit, temperature, top-p), `search` (priming, sampling, beam
search over any stepper), `inputs` (generate.py's controls, length and primer as arrays),
`pieces` (generate.py's run: sample, decode, write).

Imports data, model and (in `loaded` only, to open int8 sessions) quant; the algorithms in
`sampling` and `search` load nothing of quant.
"""
