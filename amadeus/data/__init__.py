"""Stage 1, data: MIDI files and played phrases into event tokens and controls, and back.

`notes` (a performance as arrays), `midi` (files <-> Notes: the only module that reads or writes
MIDI), `codec` (the event vocabulary as a table), `controls` (pitch-class histogram and density),
`encoding` (a file or a phrase -> tokens, with a dataset's settings), `dataset` (the `.data`
format, the split, training windows), `preprocessing` (a folder of MIDI files -> `.data`),
`augment` (transposition, time stretch), `render` (piano rolls and audio of Notes).

Imports only the shared plumbing (errors, atomic writes, progress) and no other stage; the codec,
controls and notes load no torch.
"""
