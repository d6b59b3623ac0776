"""Errors a user can cause. Scripts print their message as one line and exit 2; no traceback."""


class AmadeusError(Exception):
    """Base class: the message names the file (or flag) and the reason."""


class MidiError(AmadeusError):
    """A MIDI file that cannot be read or written."""


class DatasetError(AmadeusError):
    """A `.data` file or dataset folder that cannot be used."""


class SessionError(AmadeusError):
    """A `.sess` checkpoint that is missing, corrupt or foreign."""


class StatsError(AmadeusError):
    """A calibration statistics YAML file that cannot be used."""


class UsageError(AmadeusError):
    """A bad flag value or combination of flags."""
